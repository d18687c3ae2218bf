"""Errors whose message is the whole story: the CLI reports them as a one-line reason, without a traceback."""


class TrainingError(Exception):
    """The job cannot go on (e.g. the H2O JVM does not start). Exit code 1."""


class TrainingInputError(TrainingError):
    """Bad hyperparameters, channels or data: the user has to change the job's input. Exit code 2."""
