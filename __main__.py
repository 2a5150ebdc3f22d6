"""The Pulumi program: ``pulumi up -s <env>`` builds the environment named by the stack.

The offline engine (``agentinfra plan``) runs this same file under Pulumi's mock runtime.
"""

from stacks.app import build

build()
