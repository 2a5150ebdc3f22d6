"""IAM and KMS rules: no administrator policies, rotating keys, key policies without open principals."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from .documents import allows_admin, is_wildcard_principal, parse_document, statements
from .framework import Reporter, Rule, resource_rule

ROLE = "aws:iam/role:Role"
DOCUMENT_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
KEY = "aws:kms/key:Key"
ADMIN_POLICIES = (
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
)

NO_STAR = Rule(
    id="AI-IAM-001",
    name="iam-no-star-on-star",
    description="IAM policies never allow every action on every resource.",
    severity=Severity.CRITICAL,
    fix="List the exact actions and resources the principal needs; use the components' grant helpers "
    "(grant_send, grant_consume, grant_write), which do.",
    resource_types=(ROLE, *DOCUMENT_TYPES),
    checkov=("CKV_AWS_1", "CKV_AWS_62", "CKV_AWS_63"),
    cdk_nag=("AwsSolutions-IAM5",),
)


@resource_rule(NO_STAR)
def no_star(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    documents = (
        [args.props.get("policy")]
        if args.resource_type != ROLE
        else [p.get("policy") for p in (args.props.get("inlinePolicies") or [])]
    )
    for document in documents:
        for stmt in statements(parse_document(document)):
            if allows_admin(stmt):
                report(f"{args.name!r} allows '*' on '*' ({stmt.get('Sid') or 'unnamed statement'}).")


NO_ADMIN = Rule(
    id="AI-IAM-002",
    name="iam-no-admin-managed-policy",
    description="No role, user or group has an administrator-level AWS managed policy attached.",
    severity=Severity.CRITICAL,
    fix="Replace AdministratorAccess, PowerUserAccess or IAMFullAccess with a policy listing exact actions.",
    resource_types=(ROLE, *ATTACHMENT_TYPES),
    checkov=("CKV_AWS_274",),
    cdk_nag=("AwsSolutions-IAM4",),
)


@resource_rule(NO_ADMIN)
def no_admin(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    arns = (
        list(args.props.get("managedPolicyArns") or []) if args.resource_type == ROLE else [args.props.get("policyArn")]
    )
    for arn in arns:
        if isinstance(arn, str) and arn.split(":", 4)[-1] in {a.split(":", 4)[-1] for a in ADMIN_POLICIES}:
            report(f"{args.name!r} attaches the administrator-level policy {arn}.")


ROTATION = Rule(
    id="AI-KMS-001",
    name="kms-key-rotation",
    description="Symmetric KMS keys rotate their key material automatically.",
    severity=Severity.MEDIUM,
    fix="Set enable_key_rotation=True (components.kms_key.EncryptionKey always does).",
    resource_types=(KEY,),
    checkov=("CKV_AWS_7",),
    cdk_nag=("AwsSolutions-KMS5",),
)


@resource_rule(ROTATION)
def rotation(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    spec = args.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and args.props.get("enableKeyRotation") is not True:
        report(f"key {args.name!r} does not rotate.")


KEY_PRINCIPALS = Rule(
    id="AI-KMS-002",
    name="kms-no-wildcard-principal",
    description="KMS key policies never allow every principal without a condition.",
    severity=Severity.CRITICAL,
    fix="Name the account root and the service principals that use the key, each with a condition "
    "(components.kms_key.key_policy).",
    resource_types=(KEY,),
    checkov=("CKV_AWS_33",),
)


@resource_rule(KEY_PRINCIPALS)
def key_principals(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    for stmt in statements(parse_document(args.props.get("policy"))):
        if stmt.get("Effect") == "Allow" and is_wildcard_principal(stmt) and not stmt.get("Condition"):
            report(f"key {args.name!r} allows every principal ({stmt.get('Sid') or 'unnamed statement'}).")


RULES = [no_star, no_admin, rotation, key_principals]
