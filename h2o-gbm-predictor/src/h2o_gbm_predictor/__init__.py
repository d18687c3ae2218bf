"""SageMaker-compatible model server for the H2O GBM MOJOs written by h2o-gbm-trainer."""
