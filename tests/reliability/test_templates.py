"""Templates run in Jinja2's sandbox: no way from a template to Python internals.

Each attempt is a ``template`` node read with ``pond cat``: it fails with one ``Error:``
line that names the node and what was refused, and nothing outside the template
happens (a canary file a successful escape would create stays absent). The sandbox
also bounds what one expression may build, the size of the output and the time a
rendering may take, while ordinary templates keep working.
"""

import json
import time
import traceback
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

import factories.template as template_factory
from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

CANARY = "{canary}"  # replaced by a path a successful escape would create

UNSAFE = "is unsafe"
NO_INCLUDES = "a template cannot include, import or extend other templates"

ATTEMPTS: list[tuple[str, str, str]] = [
    # id, template, what the error line says
    ("str-mro", "{{ ''.__class__.__mro__ }}", "attribute '__class__' of 'str' object is unsafe"),
    ("query-globals", "{{ query.__globals__ }}", "'__globals__' of 'function' object is unsafe"),
    ("query-code", "{{ query.__code__.co_consts }}", "'__code__' of 'function' object is unsafe"),
    ("query-closure", "{{ query.__closure__ }}", "'__closure__' of 'function' object is unsafe"),
    (
        "cycler-globals",
        "{{ cycler.__init__.__globals__ }}",
        "'__init__' of 'type' object is unsafe",
    ),
    (
        "joiner-globals",
        "{{ joiner.__init__.__globals__ }}",
        "'__init__' of 'type' object is unsafe",
    ),
    ("namespace-globals", "{{ namespace.__init__.__globals__ }}", UNSAFE),
    ("lipsum-globals", "{{ lipsum.__globals__ }}", "'lipsum' is undefined"),
    (
        "os-system",
        "{{ cycler.__init__.__globals__.os.system('touch " + CANARY + "') }}",
        "'__init__' of 'type' object is unsafe",
    ),
    ("subclasses", "{{ ().__class__.__bases__[0].__subclasses__() }}", UNSAFE),
    ("dict-class", "{{ sources.__class__ }}", "'__class__' of 'dict' object is unsafe"),
    ("row-class", "{{ query('SELECT 1 AS x')[0].__class__ }}", "'__class__' of 'dict' object"),
    ("type-mro", "{{ dict.mro() }}", "'mro' of 'type' object is unsafe"),
    ("attr-filter", "{{ query|attr('__globals__') }}", "'__globals__' of 'function' object"),
    ("format-attr", "{{ '{0.__class__}'.format(path) }}", "'__class__' of 'str' object is unsafe"),
    ("format-globals", "{{ '{0.__globals__}'.format(query) }}", "'__globals__' of 'function'"),
    ("self-context", "{{ self._TemplateReference__context }}", UNSAFE),
    ("self-dict", "{{ self.__dict__ }}", "'__dict__' of 'TemplateReference' object is unsafe"),
    ("private-attribute", "{{ path.__len__() }}", "'__len__' of 'str' object is unsafe"),
    ("bound-self", "{{ path.upper.__self__ }}", "'__self__' of 'builtin_function_or_method'"),
    ("builtins", "{{ __builtins__ }}", "'__builtins__' is undefined"),
    ("import-call", "{{ import('os') }}", "'import' is undefined"),
    ("include", "{% include '/etc/passwd' %}", NO_INCLUDES),
    ("import", "{% import 'os' as os %}", NO_INCLUDES),
    ("extends", "{% extends '/etc/passwd' %}", NO_INCLUDES),
    ("from-import", "{% from 'os' import system %}", NO_INCLUDES),
    # what one expression may build
    ("repeat-string", "{{ 'x' * 10**10 }}", "repeating 1 items 10000000000 times"),
    ("repeat-list", "{{ [0] * 10**9 }}", "repeating 1 items 1000000000 times"),
    ("huge-power", "{{ 10 ** 10000000 }}", "10 ** 10000000 is too large a number"),
    ("printf-width", "{{ '%9999999999s' % 'x' }}", "a format width of 9999999999"),
    ("printf-star", "{{ '%*s'|format(10**10, 'x') }}", "would build more than 10,000,000"),
    ("format-width", "{{ '{:>9999999999}'.format('x') }}", "a format width of 9999999999"),
    ("nested-width", "{{ '{:>{w}}'.format('x', w=10**10) }}", "would build more than 10,000,000"),
    ("center", "{{ 'x'|center(10**10) }}", "center(10000000000) would build"),
    ("ljust", "{{ 'x'.ljust(10**10) }}", "ljust(10000000000) would build"),
    ("batch", "{{ range(10)|batch(10**10)|list }}", "batch(10000000000) would build"),
    ("slice", "{{ [1]|slice(10**10)|list }}", "slice(10000000000) would build"),
    ("range", "{{ range(10**10)|list }}", "Range too big"),
    # SQL from a template is sandboxed like any other (see test_sandbox.py)
    ("query-host-file", "{{ query(\"SELECT * FROM read_text('/etc/passwd')\") }}", "disabled"),
    ("query-copy", "{{ query(\"COPY (SELECT 1) TO '" + CANARY + "'\") }}", "only SELECT"),
]

FINE: list[tuple[str, str, str]] = [
    # id, template, its output: the bounds leave ordinary templates alone
    ("rule", "{{ '-' * 8 }}", "--------"),
    ("power", "{{ 2 ** 10 }}", "1024"),
    ("thousands", "{{ '{:,}'.format(5000000000) }}", "5,000,000,000"),
    ("percent", "{{ '%5.1f%%' % 3.14159 }}", "  3.1%"),
    ("modulo", "{{ 17 % 5 }}", "2"),
    ("center", "{{ 'ab'|center(6) }}", "  ab  "),
    ("query", "{{ query('SELECT count(*) AS n FROM source')[0].n }}", "3"),
    (
        "loop",
        "{% set ns = namespace(t=0) %}{% for r in query('SELECT v FROM source') %}"
        "{% set ns.t = ns.t + r.v %}{% endfor %}{{ ns.t }}",
        "6.0",
    ),
    ("table", "{{ query('SELECT 1 AS a')|markdown_table }}", "| a |\n|---|\n| 1 |"),
]


def pond_cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--pond", str(root), *args])


def refusal(result: Result) -> str:
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        shown = "".join(traceback.format_exception(escaped))
        pytest.fail(f"a traceback reached the user:\n{shown}")
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0].removeprefix("Error: ")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A pond holding every template below (made in one transaction), and the canary."""
    base = tmp_path_factory.mktemp("templates")
    canary = base / "canary"
    root = base / "pond"
    pond = Pond.create(str(root))
    sources = {"source": "/data/values.table"}

    def config(text: str) -> dict[str, Any]:
        return {"template": text.replace(CANARY, str(canary)), "sources": sources}

    with pond.transaction("templates") as tx:
        tx.write_table("/data/values.table", pa.table({"v": [1.0, 2.0, 3.0]}), parents=True)
        for name, text, _ in ATTEMPTS:
            # unchecked at create (a written-out query reading a host file is refused
            # there): what is tested here is the rendering's own sandbox
            tx.create_dynamic(f"/evil/{name}.md", "template", config(text), check_sql=False)
        for name, text, _ in FINE:
            tx.create_dynamic(f"/fine/{name}.md", "template", config(text))
        loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        tx.create_dynamic("/evil/endless-loop.md", "template", config(loops))
        tx.create_dynamic(
            "/evil/big-output.md",
            "template",
            config("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"),
        )
    return root, canary


@pytest.mark.parametrize(("says"), [pytest.param(a[2], id=a[0]) for a in ATTEMPTS])
def test_a_template_cannot_reach_python_internals(
    templates: tuple[Path, Path], request: pytest.FixtureRequest, says: str
) -> None:
    root, canary = templates
    node = f"/evil/{request.node.callspec.id}.md"
    line = refusal(pond_cli(root, "cat", node))
    assert line.startswith(f"{node}: factory 'template' failed: "), line  # names the node
    assert says in line, line
    assert not canary.exists()


@pytest.mark.parametrize(("output"), [pytest.param(f[2], id=f[0]) for f in FINE])
def test_ordinary_templates_still_render(
    templates: tuple[Path, Path], request: pytest.FixtureRequest, output: str
) -> None:
    root, _ = templates
    result = pond_cli(root, "cat", f"/fine/{request.node.callspec.id}.md")
    assert result.exit_code == 0, result.output
    assert result.stdout == output


def test_a_template_that_runs_too_long_is_stopped(
    templates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop that calls nothing cannot be interrupted from inside the sandbox; the
    rendering runs in a worker that is stopped after the budget."""
    root, _ = templates
    monkeypatch.setattr(template_factory, "RENDER_SECONDS", 1.0)
    started = time.monotonic()
    line = refusal(pond_cli(root, "cat", "/evil/endless-loop.md"))
    assert time.monotonic() - started < 10
    assert line.startswith("/evil/endless-loop.md: ")
    assert "the template ran longer than 1s and was stopped" in line
    # the process goes on unharmed: the next rendering works
    assert pond_cli(root, "cat", "/fine/query.md").stdout == "3"


def test_a_template_cannot_render_without_bound(
    templates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = templates
    monkeypatch.setattr(template_factory, "MAX_OUTPUT_BYTES", 2**20)
    line = refusal(pond_cli(root, "cat", "/evil/big-output.md"))
    assert line.startswith("/evil/big-output.md: ")
    assert "the template renders more than 1 MiB" in line


def test_the_sandbox_is_jinjas(tmp_path: Path) -> None:
    """The environment every template renders in is Jinja2's SandboxedEnvironment."""
    from jinja2.sandbox import SandboxedEnvironment

    env = template_factory.build_sandbox()
    assert isinstance(env, SandboxedEnvironment)
    assert env.is_safe_attribute("", "upper", "".upper)
    assert not env.is_safe_attribute("", "__class__", str)
    assert not env.is_safe_attribute(pond_cli, "__globals__", {})
    assert "lipsum" not in env.globals
    assert json.dumps(sorted(env.intercepted_binops)) == '["%", "*", "**"]'
