"""The emulated AWS account the local run deploys into: its id, its region and the data bucket it creates."""

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DATA_BUCKET = "h2o-sagemaker-local-data"
