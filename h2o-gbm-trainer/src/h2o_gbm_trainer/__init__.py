"""Train H2O GBM models under the SageMaker training contract (or a local folder laid out the same way)."""
