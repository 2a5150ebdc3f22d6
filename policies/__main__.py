"""The agent-infra CrossGuard policy pack.

Constructing a PolicyPack starts the analyzer's gRPC server and never returns, so this file does
nothing else; the rules live in the importable ``agentinfra_policies`` package, which the offline gate
(``agentinfra check``) runs too.
"""

from agentinfra_policies.pack import PACK_NAME, all_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=all_policies(), enforcement_level=EnforcementLevel.MANDATORY)
