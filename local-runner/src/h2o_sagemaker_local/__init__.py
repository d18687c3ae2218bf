"""Local run of the H2O SageMaker workflow: moto for AWS, real processes for the containers."""
