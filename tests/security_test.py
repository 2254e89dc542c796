"""Static guarantees: no unsafe deserialization or evaluation in the product, no credentials in Beam args."""

import ast
from pathlib import Path

import pytest

from pipeline.config import beam_args

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "components", "transform", "kubeflow", "schemas")
# Calls that execute or deserialize arbitrary data: never on anything a user or the network supplies.
FORBIDDEN = {
    "eval", "exec", "pickle.load", "pickle.loads", "dill.load", "dill.loads", "marshal.load", "marshal.loads",
    "yaml.unsafe_load", "yaml.full_load", "os.system", "shelve.open", "jsonpickle.decode",
}  # fmt: skip


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def unsafe_calls(source: str, filename: str = "<string>") -> list[str]:
    """`file:line: call` for every forbidden call, yaml.load without SafeLoader, and shell=True."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if name in FORBIDDEN:
            found.append(f"{filename}:{node.lineno}: {name}")
        elif name == "yaml.load" and "SafeLoader" not in ast.unparse(keywords.get("Loader", ast.Constant(None))):
            found.append(f"{filename}:{node.lineno}: yaml.load without SafeLoader")
        elif isinstance(keywords.get("shell"), ast.Constant) and keywords["shell"].value is True:
            found.append(f"{filename}:{node.lineno}: {name}(shell=True)")
    return found


def test_the_checker_finds_each_unsafe_call():
    planted = "import pickle, yaml\npickle.loads(b)\nyaml.load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\neval('1')\n"
    planted += "subprocess.run(c, shell=True)\n"
    assert unsafe_calls(planted) == [
        "<string>:2: pickle.loads",
        "<string>:3: yaml.load without SafeLoader",
        "<string>:5: eval",
        "<string>:6: subprocess.run(shell=True)",
    ]


def test_product_code_has_no_unsafe_deserialization_or_evaluation():
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 20
    problems = [hit for path in files for hit in unsafe_calls(path.read_text(), str(path.relative_to(REPO)))]
    assert problems == []


@pytest.mark.parametrize(
    "arg",
    [
        "--s3_secret_access_key=planted-secret",
        "--s3_access_key_id=planted-secret",
        "--azure_connection_string=planted-secret",
        "--my_service_password=planted-secret",
    ],
)
def test_credentials_are_refused_as_beam_args_without_echoing_them(arg):
    with pytest.raises(ValueError, match="carries a credential") as raised:
        beam_args("DataflowRunner", (arg,))
    assert "planted-secret" not in str(raised.value)


def test_ordinary_beam_args_pass():
    args = ("--project=p", "--region=europe-west1", "--service_account_email=sa@p.iam.gserviceaccount.com")
    assert beam_args("DataflowRunner", args) == ("--runner=DataflowRunner", *args)
