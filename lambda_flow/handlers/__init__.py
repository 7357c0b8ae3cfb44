"""The AWS Lambda entry points, one module per function: ``lambda_flow/handlers/<name>.handler``.

Point a SAM or CloudFormation ``Handler`` at them (``lambda_flow/handlers/api.handler``). Each
module builds its function's runtime at import (a cold start), so this package imports none of
them.
"""
