"""How gate results are shown: a table for people, JSON for tools, SARIF for code-scanning UIs."""

from __future__ import annotations

from typing import Any

from agentinfra_policies.framework import Rule

from .gate import GateResult

_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}


def table(result: GateResult, *, show_unknown: bool = True) -> str:
    rows = [
        (f.rule_id, f.policy, f.resource, f.level if f.kind == "violation" else f"unknown ({f.level})", f.message)
        for f in result.findings
        if f.kind == "violation" or show_unknown
    ]
    status = "PASS" if result.passed else "FAIL"
    counts = (
        f"{len(result.mandatory_violations)} mandatory, "
        f"{sum(1 for f in result.findings if f.kind == 'violation' and f.level == 'advisory')} advisory, "
        f"{sum(1 for f in result.findings if f.kind == 'unknown')} could not run (unknown values)"
    )
    head = (
        f"{result.environment}: {status}: {result.rules_evaluated} rules evaluated over {result.resources} "
        f"resources; {counts}"
    )
    if not rows:
        return head
    widths = [max(len(r[i]) for r in rows + [("RULE", "POLICY", "RESOURCE", "LEVEL", "")]) for i in range(4)]
    lines = [
        head,
        "  "
        + "  ".join(h.ljust(w) for h, w in zip(("RULE", "POLICY", "RESOURCE", "LEVEL"), widths, strict=True))
        + "  MESSAGE",
    ]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows
    ]
    return "\n".join(lines)


def sarif(results: list[GateResult], rules: list[Rule], config_files: dict[str, str]) -> dict[str, Any]:
    """SARIF 2.1.0: one run, the pack's rules as reportingDescriptors, one result per finding.

    Resources have no source line; each result points at its environment's config file and names the
    resource's URN as a logical location.
    """
    index = {r.id: i for i, r in enumerate(rules)}
    out: list[dict[str, Any]] = []
    for result in results:
        for f in result.findings:
            out.append(
                {
                    "ruleId": f.rule_id,
                    "ruleIndex": index[f.rule_id],
                    "level": _SARIF_LEVEL.get(f.level, "note") if f.kind == "violation" else "note",
                    "message": {"text": f.message if f.kind == "violation" else f"could not run: {f.message}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": config_files.get(result.environment, "")},
                                "region": {"startLine": 1},
                            },
                            "logicalLocations": [
                                {"fullyQualifiedName": f.urn or result.environment, "kind": "resource"}
                            ],
                        }
                    ],
                    "properties": {"environment": result.environment, "kind": f.kind},
                }
            )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "agent-infra",
                        "informationUri": "https://www.pulumi.com/docs/iac/packages-and-automation/crossguard/",
                        "rules": [
                            {
                                "id": r.id,
                                "name": r.name,
                                "shortDescription": {"text": r.description},
                                "help": {"text": r.fix},
                                "properties": {"severity": r.severity.value, "policy": r.name},
                            }
                            for r in rules
                        ],
                    }
                },
                "results": out,
            }
        ],
    }
