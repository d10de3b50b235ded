from __future__ import annotations

import pytest

from lamina.cli.template import go_str, render_template
from lamina.errors import UsageError

DATA = {
    "Id": "sha256:abc",
    "GraphDriver": {"Data": {"MergedDir": "/m", "LowerDir": "/a:/b"}, "Name": "overlay2"},
    "RootFS": {"Type": "layers", "Layers": ["sha256:1", "sha256:2"]},
    "Config": {"Labels": {"b": "2", "a": "1"}, "Env": None, "Cmd": ["/bin/sh"]},
    "Size": 1985635,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.GraphDriver.Data.MergedDir}}", "/m"),
        ("{{json .RootFS.Layers}}", '["sha256:1","sha256:2"]'),
        ("{{range .RootFS.Layers}}{{.}}\n{{end}}", "sha256:1\nsha256:2\n"),
        ('{{index .Config.Labels "a"}}', "1"),
        # Go's fmt prints maps sorted by key and slices space-separated.
        ("{{.Config.Labels}}", "map[a:1 b:2]"),
        ("{{.RootFS.Layers}}", "[sha256:1 sha256:2]"),
        ("{{.Config.Env}}", "<no value>"),
        ("{{.Size}}", "1985635"),
        ("{{if .Config.Env}}yes{{else}}no{{end}}", "no"),
        (
            "{{.GraphDriver | json}}",
            '{"Data":{"MergedDir":"/m","LowerDir":"/a:/b"},"Name":"overlay2"}',
        ),
        ('{{join .RootFS.Layers ","}}', "sha256:1,sha256:2"),
        ("{{range .RootFS.Layers -}} x {{- end}}", "xx"),
        ("{{.Missing.Deeper}}", "<no value>"),
        ("{{len .RootFS.Layers}}", "2"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render_template(template, DATA) == expected


@pytest.mark.parametrize(
    "template", ["{{range .RootFS.Layers}}", "{{end}}", "{{nosuchfunc .X}}", "{{else}}", "{{}}"]
)
def test_template_errors_are_usage_errors(template: str) -> None:
    with pytest.raises(UsageError) as info:
        render_template(template, DATA)
    assert info.value.exit_status == 2


def test_go_str_bools_and_nested() -> None:
    assert go_str({"k": [True, None]}) == "map[k:[true <no value>]]"
