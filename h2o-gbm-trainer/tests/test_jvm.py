"""The H2O JVM's start-up options and the AppCDS archive's cache, without starting a JVM."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from h2o_gbm_trainer import cluster, jvm

XGBOOST_OFF = "-Dsys.ai.h2o.ext.core.toggle.XGBoost=False"
BENCHMARK_OFF = "-Dsys.ai.h2o.heartbeat.benchmark.enabled=false"
C1_ONLY = "-XX:TieredStopAtLevel=1"


@pytest.mark.parametrize(
    ("option", "key"),
    [
        ("-XX:+UseSerialGC", "-XX:UseSerialGC"),
        ("-XX:-UseSerialGC", "-XX:UseSerialGC"),
        ("-XX:TieredStopAtLevel=4", "-XX:TieredStopAtLevel"),
        ("-Dsys.ai.h2o.ext.core.toggle.XGBoost=True", "-Dsys.ai.h2o.ext.core.toggle.XGBoost"),
        ("-Xshare:off", "-Xshare"),
        ("-Xmx4g", "-Xmx"),
        ("-XX:SharedArchiveFile=/x.jsa", "-XX:SharedArchiveFile"),
    ],
)
def test_an_option_is_known_by_what_it_sets(option: str, key: str) -> None:
    assert jvm.option_key(option) == key


def test_xgboost_and_the_heartbeat_benchmark_are_off_and_c1_only_for_small_inputs() -> None:
    assert jvm.default_options({}, input_bytes=60_000) == [XGBOOST_OFF, BENCHMARK_OFF, C1_ONLY]
    assert jvm.default_options({}, input_bytes=jvm.SMALL_INPUT_BYTES + 1) == [XGBOOST_OFF, BENCHMARK_OFF]
    assert jvm.default_options({}, input_bytes=None) == [XGBOOST_OFF, BENCHMARK_OFF]


def test_the_pinned_h2o_reads_the_heartbeat_benchmark_property() -> None:
    """H2O ignores a system property it does not read, so a misspelt or renamed one would go unnoticed."""
    with zipfile.ZipFile(cluster.find_h2o_jar()) as jar:
        heartbeat = jar.read("water/HeartBeatThread.class")
    assert BENCHMARK_OFF.removeprefix("-D").split("=")[0].encode() in heartbeat


def test_java_tool_options_override_the_trainers_own_options() -> None:
    """The JVM reads JAVA_TOOL_OPTIONS before the command line: an option of the same name there must win."""
    environ = {
        "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=4 -Dsys.ai.h2o.ext.core.toggle.XGBoost=True"
        " -Dsys.ai.h2o.heartbeat.benchmark.enabled=true"
    }
    assert jvm.default_options(environ, input_bytes=60_000) == []
    # The local runner's options leave the others in place.
    local = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    assert jvm.default_options(local, input_bytes=60_000) == [XGBOOST_OFF, BENCHMARK_OFF]


def test_the_cache_folder(tmp_path: Path) -> None:
    assert jvm.cache_dir({"H2O_GBM_TRAINER_CACHE_DIR": "/opt/cache", "XDG_CACHE_HOME": "/x"}) == Path(
        "/opt/cache"
    )
    assert jvm.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/h2o-gbm-trainer")
    assert jvm.cache_dir({}) == Path.home() / ".cache" / "h2o-gbm-trainer"


@pytest.fixture
def fake_jdk(tmp_path: Path) -> tuple[Path, Path]:
    """A java launcher, its JVM library and release file, and an h2o.jar: the files an archive depends on."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "lib" / "server").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "lib" / "server" / "libjvm.so").write_bytes(b"jvm")
    (home / "release").write_text(
        'JAVA_VERSION="17.0.15"\nJAVA_RUNTIME_VERSION="17.0.15+6-Debian-1deb12u1"\n'
    )
    jar = tmp_path / "h2o.jar"
    jar.write_bytes(b"jar")
    return home / "bin" / "java", jar


def _touch(path: Path, seconds_later: int) -> None:
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + seconds_later * 10**9))


def test_an_archive_is_named_after_the_exact_jar_jdk_and_heap_kind(fake_jdk: tuple[Path, Path]) -> None:
    java, jar = fake_jdk
    name = jvm.archive_name(java, jar, compressed_oops=True)

    assert name.startswith("h2o-3.46.0.11-java-17.0.15+6-Debian-1deb12u1-coops-") and name.endswith(".jsa")
    assert jvm.archive_name(java, jar, compressed_oops=True) == name
    assert "-nocoops-" in jvm.archive_name(java, jar, compressed_oops=False)
    # A jar or JDK replaced in place, even by the same version, never meets an archive made for another.
    _touch(jar, 1)
    after_jar = jvm.archive_name(java, jar, compressed_oops=True)
    _touch(java.parent.parent / "lib" / "server" / "libjvm.so", 1)
    after_jdk = jvm.archive_name(java, jar, compressed_oops=True)
    assert len({name, after_jar, after_jdk}) == 3


def test_without_an_archive_the_jvm_records_its_classes_for_one(fake_jdk, tmp_path: Path) -> None:
    java, jar = fake_jdk
    environ = {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path / "cache")}

    archive = jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ)

    assert archive.recording
    assert archive.options == [f"-XX:DumpLoadedClassList={tmp_path / 'loaded-classes.txt'}"]
    assert archive.state.startswith(f"creating {tmp_path / 'cache'}/h2o-")
    assert archive.dump_command == [str(java), "-Xmx1G", "-Xshare:dump", "-cp", str(jar)]
    assert list((tmp_path / "cache").iterdir()) == []  # nothing left behind by the check that it is writable


def test_an_archive_in_the_cache_is_used_and_a_broken_file_is_not(fake_jdk, tmp_path: Path) -> None:
    java, jar = fake_jdk
    environ = {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path / "cache")}
    path = tmp_path / "cache" / jvm.archive_name(java, jar, compressed_oops=True)
    path.parent.mkdir()
    path.write_bytes(b"half an archive")
    assert jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ).recording

    path.write_bytes(jvm.STATIC_ARCHIVE_MAGIC + bytes(64))
    archive = jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ)
    assert archive.options == [f"-XX:SharedArchiveFile={path}"] and not archive.recording
    # A 32 GB heap runs without compressed object pointers: another archive.
    assert jvm.startup_archive(java, jar, "-Xmx32G", 32 * 2**30, tmp_path, environ).recording


def test_cds_options_in_java_tool_options_replace_the_archive(fake_jdk, tmp_path: Path) -> None:
    java, jar = fake_jdk
    for options in ("-Xshare:off", "-XX:SharedArchiveFile=/mine.jsa"):
        environ = {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path), "JAVA_TOOL_OPTIONS": options}
        archive = jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ)
        assert (archive.options, archive.state) == ([], "as set in JAVA_TOOL_OPTIONS")


def test_an_unwritable_cache_means_no_archive_not_a_failure(fake_jdk, tmp_path: Path) -> None:
    java, jar = fake_jdk
    (tmp_path / "cache").write_text("a file where the folder should be")
    environ = {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path / "cache")}

    archive = jvm.startup_archive(java, jar, "-Xmx1G", 2**30, tmp_path, environ)

    assert archive.options == [] and archive.state.startswith("off: cannot write to")


def test_no_archive_from_a_failed_job_or_a_killed_jvm(fake_jdk, tmp_path: Path) -> None:
    java, jar = fake_jdk
    archive = jvm.startup_archive(
        java, jar, "-Xmx1G", 2**30, tmp_path, {"H2O_GBM_TRAINER_CACHE_DIR": str(tmp_path / "c")}
    )
    assert archive.class_list is not None
    archive.class_list.write_text("java/lang/Object\n")
    archive.dump_command = ["false"]  # would fail loudly if it ran

    archive.finish(jvm_exit_code=143, job_succeeded=False)
    archive.finish(jvm_exit_code=-9, job_succeeded=True)

    assert list((tmp_path / "c").iterdir()) == []
