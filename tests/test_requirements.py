"""requirements.txt as the user wrote it: warnings point at the line that names each project."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicepack.errors import RequirementsError
from chalicepack.inputs.requirements import (
    RequirementLine,
    index_options,
    lines_by_name,
    local_sources,
    read_requirement_lines,
)


def write(path: Path, text: str) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def names_and_lines(lines: tuple[RequirementLine, ...]) -> list[tuple[str | None, int]]:
    return [(line.name, line.lineno) for line in lines]


def requirements_error(path: Path) -> str:
    with pytest.raises(RequirementsError) as info:
        read_requirement_lines(path)
    return str(info.value)


# --- which line names which project -----------------------------------------------------------


def test_each_requirement_is_numbered_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = write(
        tmp_path / "requirements.txt",
        "# Runtime dependencies\n"  # 1
        "\n"  # 2
        "requests==2.31.0  # pinned for the API client\n"  # 3
        "Django>=4.2 \\\n"  # 4
        "    --hash=sha256:aaaa \\\n"  # 5
        "    --hash=sha256:bbbb\n"  # 6
        'boto3; python_version < "3.13"\n'  # 7
        "Flask[async]>=3\n"  # 8
        "my_pkg @ https://example.com/my_pkg-1.0.tar.gz\n"  # 9
        "./local/path\n"  # 10
        "git+https://github.com/org/repo@main#egg=repo\n"  # 11
        "   \n"  # 12
        "Zope.Interface  \\\n"  # 13
        "  >=5\n"  # 14
        "attrs==23.1 --hash=sha256:cccc\n",  # 15
    )

    lines = read_requirement_lines(path)

    assert names_and_lines(lines) == [
        ("requests", 3),
        ("django", 4),
        ("boto3", 7),
        ("flask", 8),
        ("my-pkg", 9),
        (None, 10),
        (None, 11),
        ("zope-interface", 13),
        ("attrs", 15),
    ]
    assert {line.path for line in lines} == {path}
    assert lines[0].text == "requests==2.31.0"  # the comment is not part of the requirement


@pytest.mark.parametrize(
    "location",
    [
        "./wheels/pkg-1.0-py3-none-any.whl",
        "../sibling-project",
        "/opt/src/pkg",
        "~/src/pkg",
        "https://example.com/pkg-1.0.tar.gz",
        "git+ssh://git@github.com/org/repo.git",
        "hg+https://hg.example.com/repo",
        # A bare archive file name is a path to pip, even though it parses as a project name.
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0.tar.gz",
    ],
)
def test_paths_and_urls_name_no_project(tmp_path: Path, location: str) -> None:
    path = write(tmp_path / "requirements.txt", f"requests\n{location}\n")

    assert names_and_lines(read_requirement_lines(path)) == [("requests", 1), (None, 2)]


def test_lines_by_name_keeps_the_first_line_naming_each_project(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "Requests>=2\n./local\nrequests<3\nsix\n")

    named = lines_by_name(read_requirement_lines(path))

    assert {name: line.lineno for name, line in named.items()} == {"requests": 1, "six": 4}


def test_where_names_the_file_relative_to_the_project(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    path = write(root / "requirements.txt", "# deps\n\nrequests\n")

    (line,) = read_requirement_lines(path)

    assert line.where(root) == "requirements.txt:3"
    assert line.where() == f"{path}:3"


# --- -r includes ------------------------------------------------------------------------------


def test_included_files_report_their_own_path_and_lines(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    main = write(
        root / "requirements.txt",
        "flask\n-r base.txt\n--requirement=extra/more.txt\nzipp\n--requirement other.txt\n",
    )
    write(root / "base.txt", "# base\nrequests\n")
    write(root / "extra" / "more.txt", "\n\nsix\n-r ../last.txt\n")
    write(root / "other.txt", "attrs\n")
    write(root / "last.txt", "idna\n")

    lines = read_requirement_lines(main)

    assert [(line.name, line.where(root)) for line in lines] == [
        ("flask", "requirements.txt:1"),
        ("requests", "base.txt:2"),
        ("six", "extra/more.txt:3"),
        ("idna", "last.txt:1"),
        ("zipp", "requirements.txt:4"),
        ("attrs", "other.txt:1"),
    ]


def test_missing_include_is_refused_naming_the_including_file(tmp_path: Path) -> None:
    main = write(tmp_path / "requirements.txt", "flask\n-r missing.txt\n")

    message = requirements_error(main)

    assert str(main) in message
    assert "missing.txt" in message
    assert "does not exist" in message


def test_missing_requirements_file_is_refused(tmp_path: Path) -> None:
    message = requirements_error(tmp_path / "requirements.txt")

    assert "requirements.txt" in message
    assert "does not exist" in message


def test_include_loop_is_refused(tmp_path: Path) -> None:
    main = write(tmp_path / "requirements.txt", "flask\n-r base.txt\n")
    write(tmp_path / "base.txt", "requests\n-r requirements.txt\n")

    message = requirements_error(main)

    assert "loop" in message
    assert "requirements.txt" in message


def test_file_including_itself_is_refused(tmp_path: Path) -> None:
    main = write(tmp_path / "requirements.txt", "-r requirements.txt\n")

    assert "loop" in requirements_error(main)


@pytest.mark.parametrize("bad", ["foo==>1", "foo bar", "requests[", "flask; python_version <"])
def test_unparsable_line_is_refused_with_file_and_line(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path / "requirements.txt", f"# deps\nflask\n{bad}\n")

    with pytest.raises(RequirementsError) as info:
        read_requirement_lines(path)

    assert "requirements.txt:3" in str(info.value)
    assert repr(bad) in str(info.value)
    # The GitHub Action annotates exactly this file and line.
    assert (info.value.file, info.value.line) == (path, 3)


def test_unparsable_line_in_an_include_names_the_included_file(tmp_path: Path) -> None:
    main = write(tmp_path / "requirements.txt", "-r base.txt\n")
    write(tmp_path / "base.txt", "requests\nfoo bar\n")

    assert "base.txt:2" in requirements_error(main)


# --- index options ----------------------------------------------------------------------------


def test_index_options_are_the_ones_pip_would_read(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "wheels").mkdir()
    main = write(
        root / "requirements.txt",
        "--index-url=https://pypi.example/simple\n"
        # Only the separator after the option splits: the URL keeps its own "=".
        "--extra-index-url https://extra.example/simple?project=a\n"
        "-f ./wheels\n"
        "--find-links https://links.example/\n"
        "--only-binary=:all:\n"
        "requests --hash=sha256:aaaa\n"
        "-r nested/more.txt\n",
    )
    write(
        root / "nested" / "more.txt", "-i https://mirror.example/simple\n--find-links ../wheels\n"
    )

    assert index_options(main) == [
        "--index-url",
        "https://pypi.example/simple",
        "--extra-index-url",
        "https://extra.example/simple?project=a",
        "--find-links",
        str(root / "wheels"),
        "--find-links",
        "https://links.example/",
        "--index-url",
        "https://mirror.example/simple",
        "--find-links",
        str(root / "wheels"),
    ]


def test_flag_options_and_trusted_hosts_travel_too(tmp_path: Path) -> None:
    main = write(
        tmp_path / "requirements.txt",
        "--no-index\n--pre\n--trusted-host\tmirror.example\nflask\n",
    )

    assert index_options(main) == ["--no-index", "--pre", "--trusted-host", "mirror.example"]


def test_no_index_options_when_the_file_names_only_projects(tmp_path: Path) -> None:
    main = write(tmp_path / "requirements.txt", "flask\nrequests==2.31.0\n")

    assert index_options(main) == []


# --- local sources: what a path requirement holds is an input of the build --------------------


def test_local_sources_are_the_paths_pip_reads_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("pkg", "editable", "other", "extras", "marked", "byvar", "six", "named"):
        (tmp_path / folder).mkdir()
    for name in ("dist/a-1.0-py3-none-any.whl", "b-1.0.tar.gz", "url-1.0-py3-none-any.whl"):
        write(tmp_path / name, "")
    requirements = write(
        tmp_path / "reqs" / "requirements.txt",
        "./pkg\n"
        "-e ./editable\n"
        "--editable=./other --config-settings x=y\n"
        "./extras[fast]\n"
        './marked ; python_version >= "3"\n'
        "${PKG_ROOT}/byvar\n"
        "dist/a-1.0-py3-none-any.whl --hash=sha256:00\n"
        "b-1.0.tar.gz\n"
        f"named @ {(tmp_path / 'named').as_uri()}\n"
        f"{(tmp_path / 'url-1.0-py3-none-any.whl').as_uri()}\n"
        "six\n"  # a project, though a folder of that name is in the working directory
        f"git+{(tmp_path / 'pkg').as_uri()}#egg=pkg\n"  # VCS: not a local source
        "https://example.org/c-1.0-py3-none-any.whl\n"
        "./gone\n",  # pip's error to give: nothing to fingerprint
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PKG_ROOT", str(tmp_path))

    assert local_sources(requirements) == [
        tmp_path / name
        for name in (
            "pkg", "editable", "other", "extras", "marked", "byvar",
            "dist/a-1.0-py3-none-any.whl", "b-1.0.tar.gz", "named", "url-1.0-py3-none-any.whl",
        )
    ]  # fmt: skip


def test_local_sources_of_included_files_count_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pkg").mkdir()
    requirements = write(tmp_path / "requirements.txt", "-r more.txt\n")
    write(tmp_path / "more.txt", "./pkg\n")
    monkeypatch.chdir(tmp_path)

    assert local_sources(requirements) == [tmp_path / "pkg"]


def test_a_byte_order_mark_is_read_as_pip_reads_it_not_as_part_of_the_first_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfsix\n-r more.txt\n")
    (tmp_path / "more.txt").write_bytes("alpha\n".encode("utf-16"))

    assert names_and_lines(read_requirement_lines(path)) == [("six", 1), ("alpha", 1)]


def test_an_undecodable_requirements_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"caf\xe9==1.0\n")

    assert "make it a readable UTF-8 file" in requirements_error(path)
