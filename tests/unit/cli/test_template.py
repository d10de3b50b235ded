from __future__ import annotations

import pytest

from lamina.cli.template import TemplateError, go_str, render_template
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


# The busybox image as `docker import --change 'CMD ["/bin/sh"]' --change 'LABEL a=1 b=two'`
# gives it; the expected values below are what docker 20.10's `docker inspect -f` printed for
# it (its CLI was built with Go 1.24), except where a row says "Go, for map data": docker decodes
# into typed structs first, lamina's data is maps.
LAYER = "sha256:f9d8a2f65844aeea2ac0a484842ba63cfbdd7bfb2bf603311cdac482e3c20d46"
IMAGE = {
    "Id": "sha256:0372885d7ab7d3761f66e604cbb89f2b087e7c1e27ce8370a8cd8b0023fa87d9",
    "RepoTags": ["busybox:latest"],
    "Os": "linux",
    "Architecture": "amd64",
    "Size": 1985581,
    "Config": {
        "Tty": False,
        "Env": None,
        "Cmd": ["/bin/sh"],
        "Entrypoint": None,
        "Labels": {"a": "1", "b": "two"},
    },
    "RootFS": {"Type": "layers", "Layers": [LAYER]},
}

DOCKER_ROWS = [
    # printf and Go's fmt verbs
    ('{{printf "%s-%d" .Os 3}}', "linux-3"),
    ('{{.Id | printf "%.12s"}}', "sha256:03728"),
    ('{{printf "%v" .Config.Labels}}', "map[a:1 b:two]"),
    ('{{printf "%s" .Config.Labels}}', "map[a:1 b:two]"),
    ('{{printf "%v %s" .Config.Cmd .Config.Cmd}}', "[/bin/sh] [/bin/sh]"),
    ('{{printf "%q" .Os}} {{printf "%q" .Config.Cmd}}', '"linux" ["/bin/sh"]'),
    ('{{printf "%-20s|" .Os}}', "linux               |"),
    ('{{printf "%5d|" 42}}', "   42|"),
    ('{{printf "%x %X %x" 255 255 "hi"}}', "ff FF 6869"),
    ('{{printf "100%%"}}', "100%"),
    ('{{printf "%t %t" true .Config.Tty}}', "true false"),
    (
        '{{printf "%05d|%+d|%8.3f|%-5d|%6.2s|" 42 5 3.14159 3 "abc"}}',
        "00042|+5|   3.142|3    |    ab|",
    ),
    ('{{printf "%v %.2f %g %e" 3.5 3.14159 1e21 1234.5}}', "3.5 3.14 1e+21 1.234500e+03"),
    ('{{printf "%c %o %b %U" 65 8 5 65}}', "A 10 101 U+0041"),
    ('{{printf "%*d|%-*d|" 5 3 4 2}}', "    3|2   |"),
    ('{{printf "%v %v" true nil}}', "true <nil>"),
    ('{{printf "%x" .Config.Cmd}}', "[2f62696e2f7368]"),
    ('{{printf "%v|%s|%d" .Config.Env .Config.Env .Config.Env}}', "<nil>|%!s(<nil>)|%!d(<nil>)"),
    ('{{printf "%d" .Os}}', "%!d(string=linux)"),
    ('{{printf "%s" 3}}', "%!s(int=3)"),
    ('{{printf "%d" 3.5}}', "%!d(float64=3.5)"),
    ('{{printf "%t" "x"}} {{printf "%d" true}}', "%!t(string=x) %!d(bool=true)"),
    ('{{printf "%s"}}', "%!s(MISSING)"),
    ('{{printf "%s" "a" "b"}}', "a%!(EXTRA string=b)"),
    ('{{printf "%"}}', "%!(NOVERB)"),
    (
        '{{printf "%d" .Config.Labels}}',
        "map[%!d(string=a):%!d(string=1) %!d(string=b):%!d(string=two)]",
    ),
    ('{{printf "%v" .Config.Cmd | printf "%q"}}', '"[/bin/sh]"'),
    ('{{print 1 2 "a" 3 nil}}|{{println "a" 1 nil}}|', "1 2a3 <nil>|a 1 <nil>\n|"),
    # variables and their scopes
    ("{{$x := .Os}}{{$x}}", "linux"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$.Config.Cmd}} {{with .Config}}{{$.Os}}{{end}}", "[/bin/sh] linux"),
    ("{{$c := .Config}}{{$c.Cmd}} {{$c.Labels.a}}", "[/bin/sh] 1"),
    ('{{$x := "out"}}{{if true}}{{$x := "in"}}{{$x}}{{end}}{{$x}}', "inout"),
    ('{{$x := "a"}}{{if true}}{{$x = "b"}}{{end}}{{$x}}', "b"),
    ("{{$x := 1}}{{range .Config.Cmd}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{if $x := .Os}}{{$x}}{{else}}{{$x}}{{end}}", "linux"),
    ("{{with $x := 0}}a{{else}}{{$x}}{{end}}", "0"),
    ("{{$x := .Config.Labels}}{{$x.nope}}", "<no value>"),
    ('{{$x := 3}}{{$x | printf "%d"}}', "3"),
    # range
    ("{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}}{{end}}", "0=/bin/sh"),
    ("{{range $e := .RootFS.Layers}}{{len $e}}{{end}}", "71"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=two;"),
    ("{{range .Config.Labels}}{{.}},{{end}}", "1,two,"),
    ("{{range .Config.Cmd}}{{$.Os}}{{.}}{{end}}", "linux/bin/sh"),
    ("{{range .Config.Env}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Config.Labels}}{{.}}{{break}}{{end}}", "1"),
    ("{{range .Config.Labels}}a{{continue}}b{{end}}", "aa"),
    # with, else if, else with
    ("{{with .Config.Env}}set{{else}}unset{{end}}", "unset"),
    ("{{with .Config.Labels}}{{.a}}{{end}}", "1"),
    ("{{with .Config.Env}}{{else}}{{.Os}}{{end}}", "linux"),
    ("{{with $x := .Os}}{{$x}}{{.}}{{end}}", "linuxlinux"),
    ("{{with .Config.Env}}x{{else with .Config.Cmd}}{{index . 0}}{{end}}", "/bin/sh"),
    ("{{if .Config.Env}}a{{else if .Config.Cmd}}b{{else}}c{{end}}", "b"),
    ("{{if .Config.Env}}a{{else if .Config.Entrypoint}}b{{else}}c{{end}}", "c"),
    # comparisons and logic
    ('{{eq .Os "linux"}} {{eq .Os "windows" "linux"}} {{ne .Os "linux"}}', "true true false"),
    ('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{lt -1 0}}', "true true true true"),
    ("{{eq .Size 1985581}} {{eq .Config.Env nil}} {{eq nil nil}}", "true true true"),
    (
        '{{and 1 0 2}}|{{or 0 "" "x"}}|{{and "a" "b"}}|{{or 0 ""}}|{{not .Config.Env}}|{{not 1}}',
        "0|x|b||true|false",
    ),
    ("{{or .Os (index .Config.Cmd 5)}}", "linux"),  # short-circuit
    ("{{if and .Config.Cmd (eq (len .Config.Cmd) 1)}}one{{end}}", "one"),
    ('{{if eq .Os "linux" | not}}y{{else}}n{{end}}', "n"),
    # parenthesised arguments and chains
    ("{{if eq (len .RootFS.Layers) 1}}single{{end}}", "single"),
    ('{{printf "%s" (index .Config.Cmd 0)}}', "/bin/sh"),
    ("{{(index .Config.Cmd 0)}} {{(.Config).Cmd}}", "/bin/sh [/bin/sh]"),
    ('{{len (printf "%s-%s" .Os .Architecture)}}', "11"),
    ('{{printf "%d" (len .Os) | printf "<%s>"}}', "<5>"),
    ('{{printf "%s %s" (upper .Os) (lower .Architecture)}}', "LINUX amd64"),
    # len, index, slice, html, js, urlquery
    ("{{len .Os}} {{len .Config.Labels}}", "5 2"),
    ('{{index .Config.Labels "zz"}}', "<no value>"),  # Go, for map data
    ('{{index . "RootFS" "Layers" 0}}', LAYER),
    ('{{index "abc" 1}}', "98"),
    ("{{slice .Os 1 3}} {{slice .Config.Cmd 0 1}} {{slice .Os 2}}", "in [/bin/sh] nux"),
    (
        '{{html "<a&b>"}} {{js "it\'s <x>"}} {{urlquery "a b&c"}}',
        "&lt;a&amp;b&gt; it\\'s \\u003Cx\\u003E a+b%26c",
    ),
    # docker's functions
    ('{{pad "x" 1 2}}|{{truncate "hello" 2}}|{{truncate "hi" 5}}', " x  |he|hi"),
    ('{{pad "" 1 1}}|{{pad .Os 0 1}}|', "|linux |"),
    (
        '{{join (split "a:b:c" ":") ","}} {{title "hELLO wORLD-foo_bar"}}',
        "a,b,c HELLO WORLD-Foo_bar",
    ),
    (
        '{{split .Id ":"}}',
        "[sha256 0372885d7ab7d3761f66e604cbb89f2b087e7c1e27ce8370a8cd8b0023fa87d9]",
    ),
    (
        "{{json .Config.Labels}} {{.Config.Labels | json}}",
        '{"a":"1","b":"two"} {"a":"1","b":"two"}',
    ),
    # fields
    ("{{.Config.Labels.a}} {{$.Config.Labels.b}}", "1 two"),
    ("{{.Nope.Deeper}} {{.Config.Labels.nope}}", "<no value> <no value>"),  # Go, for map data
    ("{{with .Os}}{{.}}{{end}}{{.Os}}", "linuxlinux"),
    # lexing: comments, trim markers, literals
    ("a {{- /* c */ -}} b", "ab"),
    ("{{/* c */}}x {{- /* x */}} y", "x y"),
    ("{{/* multi\nline */}}y", "y"),
    ("a  {{- .Os}}  b|a  {{.Os -}}  b", "alinux  b|a  linuxb"),
    ('a {{- .Os -}} b{{- " c " -}}', "alinuxb c "),
    ('{{`a"b`}}', 'a"b'),
    ('{{"a\\tb"}} {{"\\x41\\u00e9"}} {{"q\\"q"}}', 'a\tb Aé q"q'),
    ("{{printf \"%c\" 'a'}} {{'a'}}", "a 97"),
    (
        "{{1.5}} {{0x10}} {{1e3}} {{-3}} {{1_000}} {{3.0}} {{0o17}} {{0b101}}",
        "1.5 16 1000 -3 1000 3 15 5",
    ),
    ('{{true}} {{false}} {{"s"}}', "true false s"),
    ('{{.Os|printf "%s"}}|{{ .Config.Labels.a | printf "%s" | len }}|{{.Os | }}', "linux|1|linux"),
    ('{{printf "%s" .Os\n}}', "linux"),
]


@pytest.mark.parametrize(("template", "expected"), DOCKER_ROWS)
def test_render_as_docker(template: str, expected: str) -> None:
    assert render_template(template, IMAGE) == expected


AT = 'template: :1:2: executing "" at '  # Go's prefix for a failure at byte 2 of line 1
ERROR_ROWS = [
    # parse errors: `template: :LINE: ...`
    ("{{if true}}{{$x := 1}}{{end}}{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{range $i, $e := .Config.Cmd}}{{end}}{{$i}}", 'template: :1: undefined variable "$i"'),
    ("{{range $a, $b, $c := .Config.Cmd}}{{end}}", "template: :1: too many declarations in range"),
    ("{{$x, $y := 1}}", "template: :1: too many declarations in command"),
    ("{{if}}x{{end}}", "template: :1: missing value for if"),
    ("{{range}}x{{end}}", "template: :1: missing value for range"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .Os}}", "template: :1: unexpected EOF"),
    ("{{(1}}", "template: :1: unclosed left paren"),
    ("{{1)}}", "template: :1: unexpected right paren"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{.Os | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{| .Os}}", 'template: :1: unexpected "|" in command'),
    ("{{@}}", 'template: :1: unexpected "@" in command'),
    ("{{nosuch}}", 'template: :1: function "nosuch" not defined'),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{/* unclosed", "template: :1: unclosed comment"),
    ("{{/* bad */ }}", "template: :1: comment ends before closing delimiter"),
    ("{{if .Os}}x{{else}}y{{else}}z{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{range .Config.Cmd}}{{else if true}}x{{end}}", "template: :1: unexpected <if> in input"),
    ("x\n{{end}}", "template: :2: unexpected {{end}}"),
    # execution errors: `template: :LINE:COL: executing "" at <NODE>: ...`
    ("{{$x = 1}}", 'template: :1:7: executing "" at <1>: undefined variable: $x'),
    (
        "{{ge 1.5 2}}",
        AT + "<ge 1.5 2>: error calling ge: incompatible types for comparison",
    ),
    (
        '{{eq "a" 1}}',
        AT + '<eq "a" 1>: error calling eq: incompatible types for comparison',
    ),
    (
        '{{eq .Config.Cmd "x"}}',
        AT + '<eq .Config.Cmd "x">: error calling eq: incompatible types for comparison',
    ),
    (
        "{{lt true false}}",
        AT + "<lt true false>: error calling lt: invalid type for comparison",
    ),
    (
        "{{eq .Os}}",
        AT + "<eq .Os>: error calling eq: missing argument for comparison",
    ),
    (
        "{{index .RootFS.Layers 5}}",
        AT + "<index .RootFS.Layers 5>: error calling index: index out of range: 5",
    ),
    (
        '{{index .Config.Cmd "x"}}',
        AT + '<index .Config.Cmd "x">: error calling index: '
        "cannot index slice/array with type string",
    ),
    ("{{len 3}}", AT + "<len 3>: error calling len: len of type int"),
    ("{{nil}}", AT + "<nil>: nil is not a command"),
    ("{{3 4}}", AT + "<3>: can't give argument to non-function 3"),
    ('{{.Os "x"}}', AT + "<.Os>: Os is not a method but has arguments"),
    (
        "{{.Os.Foo}}",
        'template: :1:5: executing "" at <.Os.Foo>: can\'t evaluate field Foo in type interface {}',
    ),
    (
        "{{printf}}",
        AT + "<printf>: wrong number of args for printf: want at least 1 got 0",
    ),
    (
        "{{not}}",
        AT + "<not>: wrong number of args for not: want 1 got 0",
    ),
    (
        "{{range .Os}}x{{end}}",
        'template: :1:8: executing "" at <.Os>: range can\'t iterate over linux',
    ),
    # Go 1.22 ranges over an integer; docker 20.10's Go (1.18/1.19 upstream) refuses, as lamina
    ("{{range 3}}x{{end}}", 'template: :1:8: executing "" at <3>: range can\'t iterate over 3'),
    # lamina's wording where docker's differs (it checks argument types before the call)
    (
        "{{.Os | truncate 3}}",
        "error calling truncate: wrong type for value; expected string; got int",
    ),
    ('{{define "x"}}{{end}}', "template: :1: {{define}} is not supported in --format"),
]


@pytest.mark.parametrize(("template", "message"), ERROR_ROWS)
def test_errors_as_docker(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(template, IMAGE)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_status == 2


def test_deep_nesting_is_a_template_error_not_a_crash() -> None:
    with pytest.raises(TemplateError, match="depth"):
        render_template("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", IMAGE)


def test_range_assigns_to_declared_variables() -> None:
    tmpl = "{{$i := 9}}{{$e := 0}}{{range $i, $e = .}}{{$i}}{{$e}},{{end}}|{{$i}}{{$e}}"
    assert render_template(tmpl, ["a", "b"]) == "0a,1b,|1b"


def test_scopes_do_not_leak_between_iterations() -> None:
    tmpl = "{{range $i, $e := .}}{{$y := $e}}{{$y}}{{end}}|{{range .}}{{$i := .}}{{$i}}{{end}}"
    assert render_template(tmpl, ["a", "b"]) == "ab|ab"


def test_nested_nil_prints_as_go_str_has_always_printed() -> None:
    # Go's fmt prints a nested nil as <nil>; go_str keeps lamina's historical <no value> and
    # printf uses Go's form.
    assert (
        render_template('{{.}} {{printf "%v" .}}', {"k": None}) == "map[k:<no value>] map[k:<nil>]"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # Go's fmt refuses widths and precisions past a million (tooLarge), so a template
        # cannot ask for gigabytes: a huge literal eats the rest, a huge * is BADWIDTH.
        ('{{printf "%99999999999d|" 1}}', "%!(NOVERB)%!(EXTRA int=1)"),
        ('{{printf "%*d|" 99999999999 1}}', "%!(BADWIDTH)1|"),
        ('{{printf "%.99999999999f|" 1.0}}', "%!(NOVERB)%!(EXTRA float64=1)"),
        ('{{printf "%9999999d" 1 | len}}', "9999999"),
        # %c of what is no rune is U+FFFD, as Go prints it (it raised OverflowError)
        ('{{printf "%c|%c|%c|%q" 99999999999 -1 65 55296}}', "\ufffd|\ufffd|A|'\ufffd'"),
    ],
)
def test_printf_widths_are_bounded_as_gos(template: str, expected: str) -> None:
    assert render_template(template, {}) == expected


def test_pad_refuses_what_would_eat_the_memory() -> None:
    assert render_template('{{pad "x" 1 2}}|', {}) == " x  |"
    with pytest.raises(TemplateError, match="padding of 99999999999 is more than 1000000"):
        render_template('{{pad "x" 99999999999 1}}', {})


def test_printf_width_takes_ascii_digits_only() -> None:
    # "²" is a digit to str.isdigit() but no number to int(): Go's parsenum stops at it.
    assert render_template('{{printf "%\u00b2d" 1}}', DATA) == "%!\u00b2(int=1)d"
