"""``template``: Jinja2 reports rendered from SQL over pond data."""

import pytest

from pond_pipeline.dynamic.sql_check import SqlCheckError
from pond_pipeline.errors import ConfigError, FactoryError

REPORT = """# Events by host
{% set sql = "SELECT host, count(*) AS n, max(score) AS top FROM events GROUP BY host" %}
{% for row in query(sql + " ORDER BY host") %}
- {{ row.host }}: {{ row.n }} events, top {{ row.top | number(1) }}
{% endfor %}
"""


def test_markdown_report_renders_rows(events_pond):
    events_pond.create_dynamic(
        "/reports/hosts.md",
        "template",
        {"template": REPORT, "sources": {"events": "/events/all.series"}},
    )

    text = events_pond.read_bytes("/reports/hosts.md").decode("utf-8")

    assert text == (
        "# Events by host\n"
        "- h0: 250 events, top 48.0\n"
        "- h1: 250 events, top 49.0\n"
        "- h2: 250 events, top 48.0\n"
        "- h3: 250 events, top 49.0\n"
    )
    assert events_pond.describe("/reports/hosts.md")["type"] == "file:data"


def test_table_filters(events_pond):
    template = (
        "{% set rows = query('SELECT priority AS p, count(*) AS n FROM e "
        "WHERE priority < 2 GROUP BY p ORDER BY p') %}"
        "{{ rows | markdown_table }}\n{{ rows | csv }}{{ [{'a': '<b>'}] | html_table }}"
    )
    events_pond.create_dynamic(
        "/reports/t.txt", "template", {"template": template, "sources": {"e": "/events/all.series"}}
    )

    text = events_pond.read_bytes("/reports/t.txt").decode()

    assert text == (
        "| p | n |\n|---|---|\n| 0 | 200 |\n| 1 | 200 |\n"
        "p,n\n0,200\n1,200\n"
        "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>"
    )


def test_report_over_a_derived_node_and_a_glob(events_pond):
    with events_pond.transaction("derive") as tx:
        tx.create_dynamic(
            "/alerts/high.series",
            "sql_derived_series",
            {"source": "/events/all.series", "query": "SELECT * FROM source WHERE priority = 4"},
        )
        tx.create_dynamic(
            "/reports/alerts.md",
            "template",
            {
                "template": "{{ query('SELECT count(*) AS n FROM a')[0].n }} of "
                "{{ query('SELECT count(*) AS n FROM everything')[0].n }}",
                "sources": {"a": "/alerts/high.series", "everything": "/*/*.series"},
            },
        )

    # the glob matches both /events/all.series and /alerts/high.series
    assert events_pond.read_bytes("/reports/alerts.md") == b"200 of 1200"


def test_undefined_name_is_an_error(pond):
    pond.create_dynamic("/r.md", "template", {"template": "Hello {{ nmae }}"})

    with pytest.raises(FactoryError) as caught:
        pond.read_bytes("/r.md")

    assert caught.value.subject == "/r.md"
    assert "the template uses an undefined value: 'nmae' is undefined" in caught.value.message


def test_syntax_error_fails_at_create_naming_the_field(pond):
    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/r.md", "template", {"template": "line one\n{% for x in %}"})

    assert "template: Value error, line 2:" in caught.value.message
    assert pond.list_nodes("/") == []


def test_sandbox_blocks_python_internals(pond):
    pond.create_dynamic("/r.md", "template", {"template": "{{ query.__globals__ }}"})

    with pytest.raises(FactoryError) as caught:
        pond.read_bytes("/r.md")

    assert "access to attribute '__globals__' of 'function' object is unsafe" in (
        caught.value.message
    )


UNDECLARED = {"template": "{{ query(\"SELECT * FROM '/events/all.series'\") }}"}


def test_query_of_an_undeclared_table_is_refused_at_create(events_pond):
    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic("/r.md", "template", UNDECLARED)

    assert caught.value.subject == "/r.md"
    assert caught.value.field == "template"
    assert "Table with name /events/all.series does not exist" in caught.value.words
    assert not events_pond.exists("/r.md")


def test_query_of_an_undeclared_table_fails_when_rendered(events_pond):
    events_pond.create_dynamic("/r.md", "template", UNDECLARED, check_sql=False)

    with pytest.raises(FactoryError) as caught:
        events_pond.read_bytes("/r.md")

    assert caught.value.subject == "/r.md"
    assert "query() failed: Catalog Error" in caught.value.message
    assert "the tables are the names in sources: none" in caught.value.message
