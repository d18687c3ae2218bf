"""The errors a local run ends with, apart from the modules that raise them: the command line catches them without
importing moto and the stack deployer (about 1.5 s), so that its option errors and --help answer at once."""


class PipelineError(Exception):
    """The local run could not start or did not succeed; the message says why."""


class RunInterrupted(Exception):
    """The user interrupted the run; the execution was stopped."""


class DeploymentFailed(Exception):
    """A resource could not be created; the message says which and why, as CloudFormation would."""
