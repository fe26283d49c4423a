"""What ships around the code: the registry manifest, the README's promises, the CI script."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema

import pixverse_mcp
from pixverse_mcp.config import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
# shared/ lies beside the checkout, on developer machines and in CI alike.
REGISTRY_SCHEMA = ROOT.parent / "shared" / "schemas" / "server.schema.json"
# The fields the registry requires, for a machine without shared/ (the full schema is checked where it exists).
MINIMAL_SCHEMA = {
    "type": "object",
    "required": ["name", "description", "version", "packages"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"},
        "description": {"type": "string", "maxLength": 100},
        "packages": {
            "type": "array",
            "items": {"type": "object", "required": ["registryType", "identifier", "transport"]},
        },
    },
}


def _server_json() -> dict[str, object]:
    return json.loads((ROOT / "server.json").read_text())


def test_server_json_is_valid_for_the_registry() -> None:
    schema = json.loads(REGISTRY_SCHEMA.read_text()) if REGISTRY_SCHEMA.exists() else MINIMAL_SCHEMA
    jsonschema.validate(_server_json(), schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_server_json_describes_this_package_over_stdio_with_the_key_as_a_secret() -> None:
    manifest = _server_json()
    (package,) = manifest["packages"]  # type: ignore[misc]
    assert manifest["version"] == package["version"] == pixverse_mcp.__version__
    assert package["registryType"] == "pypi"
    assert package["identifier"] == "aimlapi-pixverse-mcp"
    assert package["transport"] == {"type": "stdio"}
    variables = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert variables["AIMLAPI_API_KEY"]["isSecret"] is True
    assert variables["AIMLAPI_API_KEY"]["isRequired"] is True
    assert set(variables) <= set(ENVIRONMENT_VARIABLES)


def test_the_console_script_and_the_version_come_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["aimlapi-pixverse-mcp"] == "pixverse_mcp.cli:main"
    assert project["scripts"]["pixverse-mcp"] == "pixverse_mcp.cli:main"
    assert "version" in project["dynamic"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.DOTALL)
    test_command = next(block for block in blocks if block.startswith("scripts/test"))
    assert test_command == "scripts/test"
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111, "scripts/test must be executable"


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [variable for variable in ENVIRONMENT_VARIABLES if f"`{variable}`" not in readme]
    assert missing == []


def test_the_readme_carries_the_name_the_registry_checks() -> None:
    # The MCP registry verifies a PyPI package through an `mcp-name: <server name>` line in its README.
    assert f"mcp-name: {_server_json()['name']}" in (ROOT / "README.md").read_text()


def test_no_repository_url_is_invented() -> None:
    shipped = [ROOT / "README.md", ROOT / "server.json", ROOT / "pyproject.toml", *(ROOT / "examples").iterdir()]
    for path in shipped:
        assert "github.com/pixverse-mcp" not in path.read_text(), path
