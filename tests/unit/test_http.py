"""The CA bundle file: written where only this user can reach it, and never trusted as found."""

import hashlib
import os
import stat
from pathlib import Path

import pytest

from dagsync.net.http import private_directory, tls_verify

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUour-ca\n-----END CERTIFICATE-----\n"
PLANTED = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUattacker\n-----END CERTIFICATE-----\n"


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_no_verification_and_system_trust_need_no_file(tmp_path: Path) -> None:
    assert tls_verify(False, PEM, parent=str(tmp_path)) is False
    assert tls_verify(True, None, parent=str(tmp_path)) is True
    assert list(tmp_path.iterdir()) == []


def test_the_bundle_is_written_mode_0600_in_a_directory_mode_0700(tmp_path: Path) -> None:
    path = tls_verify(True, PEM, parent=str(tmp_path))

    assert isinstance(path, str)
    assert Path(path).read_text() == PEM
    assert mode(path) == 0o600
    assert mode(os.path.dirname(path)) == 0o700
    assert os.path.dirname(path) == str(tmp_path / f"dagsync-{os.geteuid()}")


def test_the_same_bundle_reuses_its_file(tmp_path: Path) -> None:
    first = tls_verify(True, PEM, parent=str(tmp_path))

    assert tls_verify(True, PEM, parent=str(tmp_path)) == first


def test_a_file_planted_where_older_versions_wrote_the_bundle_is_never_trusted(tmp_path: Path) -> None:
    digest = hashlib.sha256(PEM.encode()).hexdigest()[:16]
    (tmp_path / f"dagsync-ca-{digest}.pem").write_text(PLANTED)

    path = tls_verify(True, PEM, parent=str(tmp_path))

    assert isinstance(path, str)
    assert Path(path).read_text() == PEM


def test_a_bundle_file_whose_content_differs_is_rewritten(tmp_path: Path) -> None:
    path = tls_verify(True, PEM, parent=str(tmp_path))
    assert isinstance(path, str)
    Path(path).write_text(PLANTED)

    assert tls_verify(True, PEM, parent=str(tmp_path)) == path
    assert Path(path).read_text() == PEM


def test_a_bundle_file_readable_by_others_is_rewritten(tmp_path: Path) -> None:
    path = tls_verify(True, PEM, parent=str(tmp_path))
    assert isinstance(path, str)
    os.chmod(path, 0o644)

    tls_verify(True, PEM, parent=str(tmp_path))

    assert mode(path) == 0o600


def test_a_link_in_place_of_the_bundle_file_is_replaced_not_followed(tmp_path: Path) -> None:
    path = tls_verify(True, PEM, parent=str(tmp_path))
    assert isinstance(path, str)
    elsewhere = tmp_path / "elsewhere.pem"
    elsewhere.write_text(PEM)
    os.chmod(elsewhere, 0o600)
    os.remove(path)
    os.symlink(elsewhere, path)

    tls_verify(True, PEM, parent=str(tmp_path))

    assert not os.path.islink(path)


@pytest.mark.parametrize("planted", ["open-directory", "link", "file"])
def test_a_planted_private_directory_is_passed_over(tmp_path: Path, planted: str) -> None:
    expected = tmp_path / f"dagsync-{os.geteuid()}"
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    match planted:
        case "open-directory":
            expected.mkdir()
            os.chmod(expected, 0o777)  # noqa: S103 - the planted, shared directory under test
        case "link":
            expected.symlink_to(target, target_is_directory=True)
        case "file":
            expected.write_text("")

    directory = private_directory(str(tmp_path))

    assert directory not in (str(expected), str(target))
    assert mode(directory) == 0o700
    assert list(target.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_a_private_directory_owned_by_another_user_is_passed_over(tmp_path: Path) -> None:
    expected = tmp_path / f"dagsync-{os.geteuid()}"
    expected.mkdir(mode=0o700)
    os.chown(expected, 54321, 54321)

    assert private_directory(str(tmp_path)) != str(expected)
