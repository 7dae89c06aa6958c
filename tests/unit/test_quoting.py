"""Every value the settings accept reaches a shell as data, never as code.

hypothesis draws, for each text field that reaches a shell, values the schema ACCEPTS with as many
shell metacharacters as its allow-list lets through (and payloads that would leave a marker file if
they ever ran), renders every shell template and builds every kernel command with them, and checks:
each script parses (`sh -n`); each value stays whole inside one shell word; the Kconfig check
script, run for real on a .config, leaves no marker. The rejected side: values with `$(`, `;`, `|`,
backticks, newlines or `\\r` are refused, naming the field.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdevbox.facts import RunningConfig
from kdevbox.inventory import validate_settings
from kdevbox.kconfig import fragment_text, requested_options
from kdevbox.layout import KernelTree
from kdevbox.tasks.guest import render_build_script, render_run_script
from kdevbox.tasks.kernel import _build_commands, _configure_commands, _selftest_commands
from kdevbox.templates import render

MARKER = "/tmp/kdevbox-quoting-marker"
PAYLOADS = [
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f";touch {MARKER};",
    f"|touch {MARKER}|",
    f"&& touch {MARKER} &&",
    f"'; touch {MARKER}; '",
]

path_word = st.text(alphabet="abcXYZ019._+@-", min_size=1, max_size=8).filter(lambda w: set(w) != {"."})
home_path = st.builds(lambda a, b: f"~/{a}/{b}", path_word, path_word)
url_tail = st.text(alphabet="abc019._~:/?#@&+,=%-", max_size=24)
http_url = st.builds(lambda tail: f"http://mirror.example.org/{tail}", url_tail)
git_url = st.builds(lambda tail: f"https://git.example.org/{tail}", url_tail)
# Kconfig string values allow most printable characters: the richest source of metacharacters.
kconfig_text = st.one_of(
    st.sampled_from([p for p in PAYLOADS if not set(p) & set("\"'\\$`")]),
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Zl", "Zp"), exclude_characters="\"'\\$`"),
        max_size=24,
    ),
)
kconfig_value = kconfig_text.map(lambda text: f'CONFIG_KDEVBOX_TEST="{text}"')
proxy_password = st.text(alphabet="abc019!*()';&|<>", min_size=1, max_size=12)


@st.composite
def host_settings(draw: st.DrawFn) -> dict[str, object]:
    password = draw(proxy_password)
    return {
        "apt_proxy": {"http": f"http://ada:{password}@proxy.example.org:3128"},
        "git": {"excludesfile": draw(home_path), "name": draw(st.sampled_from(["Ada O'Brien & co; |x|"]))},
        "kernel": {
            "source_dir": draw(home_path),
            "build_root": draw(home_path),
            "name": draw(
                st.text(alphabet="abcXYZ019._-", min_size=1, max_size=8).filter(lambda w: set(w) != {"."})
            ),
            "git_url": draw(git_url),
            "localversion": "-" + draw(st.text(alphabet="abc019._+-", max_size=8)),
            "options": [draw(kconfig_value)],
            "selftests": [draw(st.text(alphabet="abc019_./-", min_size=1, max_size=8).filter(str.isalnum))],
        },
        "guest": {
            "name": "g-" + draw(st.text(alphabet="abc019-", max_size=8)),
            "mirror": draw(http_url),
            "image_dir": draw(home_path),
            "share": draw(home_path),
        },
    }


def _words(command: str) -> list[str]:
    """The shell words of command, with ; & | ( ) < > split off as the shell would."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _assert_parses(script: str, tmp: Path) -> None:
    path = tmp / "script.sh"
    path.write_text(script)
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _assert_whole(value: str, command: str) -> None:
    assert any(value in word for word in _words(command)), f"{value!r} split in: {command}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings_=host_settings())
def test_accepted_values_stay_data(settings_: dict[str, object], tmp_path: Path) -> None:
    Path(MARKER).unlink(missing_ok=True)
    config, problems = validate_settings("h1", settings_)
    assert config is not None, problems
    home = "/home/ada"
    kernel = config.kernel
    tree = KernelTree(f"{home}/{kernel.source_dir[2:]}", f"{home}/{kernel.build_root[2:]}/{kernel.name}", "x")
    commands = [
        *_configure_commands(kernel, tree, "0123abcd", RunningConfig(path="/proc/config.gz", digest="d")),
        *_selftest_commands(tree, kernel.selftests, "0123abcd"),
    ]
    for tool in ("gen", "bear", "compiledb"):
        variant = kernel.model_copy(update={"compile_commands": tool})
        commands += _build_commands(variant, tree, "0123abcd", clean=False)
        commands += _build_commands(variant, tree, "0123abcd", clean=False, record=False)
    script = "\n".join(commands)
    _assert_parses(script, tmp_path)
    for value in (tree.source, tree.build, kernel.localversion):
        _assert_whole(value, script)

    scripts = [
        render_build_script(config.guest, "ada", "ada", home, f"{home}/.ssh/id_ed25519"),
        render_run_script(home),
        render("guest/build-env.sh.j2", proxies=[("http_proxy", str(config.apt_proxy.http))]),
    ]
    for text in scripts:
        _assert_parses(text, tmp_path)
    _assert_whole(config.guest.mirror, scripts[0])
    env = subprocess.run(
        ["sh", "-c", '. "$1"; printf %s "$http_proxy"', "sh", "/dev/stdin"],
        input=scripts[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert env.stdout == str(config.apt_proxy.http)

    # The Kconfig check runs for real: a .config without the requested line makes it report, with
    # the value printed as text and nothing executed.
    check = tmp_path / "check.sh"
    check.write_text(render("kernel/check-config.sh.j2", requested=requested_options(fragment_text(kernel))))
    dot_config = tmp_path / ".config"
    dot_config.write_text("CONFIG_OTHER=y\n")
    result = subprocess.run(["sh", str(check), str(dot_config)], capture_output=True, text=True)
    assert result.returncode == 1
    assert kernel.options[0] in result.stderr
    assert not Path(MARKER).exists(), "a setting ran as shell code"


@pytest.mark.parametrize("payload", ["$(id)", ";id", "|id", "`id`", "a\nb", "a\rb"])
@pytest.mark.parametrize(
    "field",
    [
        ("kernel", "build_root", "~/b{}"),
        ("kernel", "source_dir", "/src/{}"),
        ("kernel", "path", "/src/{}"),
        ("kernel", "name", "k{}"),
        ("kernel", "git_url", "https://h.example/{}"),
        ("kernel", "wsl_kernel_path", "/mnt/c/{}"),
        ("guest", "mirror", "http://h.example/{}"),
        ("guest", "share", "~/s{}"),
        ("guest", "image_dir", "~/i{}"),
        ("git", "excludesfile", "~/x{}"),
        ("neovim", "release_url", "https://h.example/{}"),
    ],
)
def test_shell_syntax_is_refused_naming_the_field(field: tuple[str, str, str], payload: str) -> None:
    section, key, shape = field
    config, problems = validate_settings("h1", {section: {key: shape.format(payload)}})
    assert config is None
    assert [p.field for p in problems] == [f"{section}.{key}"], problems
    assert str(problems[0]).startswith(f"h1: {section}.{key} = ")


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        ({"kernel": {"name": ".."}}, "kernel.name"),
        ({"kernel": {"build_root": "~/"}}, "kernel.build_root"),
        ({"guest": {"share": "/"}}, "guest.share"),
        ({"guest": {"share": "~/src,readonly=on,path=/"}}, "guest.share"),
        ({"guest": {"image_dir": "~/a/../.ssh"}}, "guest.image_dir"),
        ({"neovim": {"leader": "\r"}}, "neovim.leader"),
        ({"wsl": {"settings": {"network": {"hostname": "a\rb"}}}}, "wsl.settings"),
        ({"kernel": {"releases_url": "http://www.kernel.org/releases.json"}}, "kernel.releases_url"),
        ({"guest": {"network": "bridge", "tap": "kdevbr0"}}, "guest"),
    ],
)
def test_dangerous_values_are_refused(settings_: dict[str, object], field: str) -> None:
    config, problems = validate_settings("h1", settings_)
    assert config is None
    assert [p.field for p in problems] == [field], problems
