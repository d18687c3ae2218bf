"""Deploy the real SAM templates into moto, the way CloudFormation would, for the resource types they use.

Intrinsic functions are evaluated from the templates themselves (parameters, conditions, Ref, GetAtt, Sub,
If, Select, Split, Join), nested applications are deployed from their own templates, state machines are
created from their ASL files with the DefinitionSubstitutions resolved, and Lambda functions are registered
so that invoking them runs their real handler module in this process. Nothing of the wiring is copied here.

``deployer`` orders and evaluates a template's resources, ``templates`` reads it with the roles SAM generates,
``intrinsics`` evaluates its functions (no AWS calls), ``resources`` holds one handler per resource type,
``custom_resources`` talks to custom resources, ``roles`` creates and checks IAM roles, ``functions`` runs the
deployed Lambda functions in process, and ``model`` holds the Stack record and the account and region.
"""

from h2o_sagemaker_local.stack.deployer import Deployer
from h2o_sagemaker_local.stack.functions import FunctionRegistry, LocalFunction
from h2o_sagemaker_local.stack.model import ACCOUNT_ID, REGION, DeploymentFailed, Stack

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Deployer",
    "DeploymentFailed",
    "FunctionRegistry",
    "LocalFunction",
    "Stack",
]
