"""``python -m omsbridge_contract``: print the scenario catalogue as a Markdown table."""

from omsbridge_contract.registry import catalogue_markdown

print(catalogue_markdown(), end="")
