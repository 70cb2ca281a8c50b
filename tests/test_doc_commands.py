"""Issue 27, point 4 ("commands that run"): every command line of README.md and docs/*.md checks against the code,
without running it (the checker is tests/doc_commands.py; ``python tests/doc_commands.py`` prints its findings)."""
import os
import os.path as osp
import sys
import textwrap

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import doc_commands as dc  # noqa: E402

PAGES = dc.documentation_pages()


@pytest.mark.parametrize("page", PAGES)
def test_page_commands_check(page):
    failures = dc.check_page(osp.join(dc.REPO, page))
    assert not failures, f"{len(failures)} command(s) of {page} would not run as written:\n" + "\n".join(failures)


def test_pages_hold_commands():
    """The pages are read: the checker finds their training and make commands (an empty find would pass above)."""
    commands = []
    for page in PAGES:
        with open(osp.join(dc.REPO, page), encoding="utf-8") as f:
            commands += dc.find_commands(f.read())[0]
    assert "README.md" in PAGES
    assert any(c.kind == "make" for c in commands)
    assert any(c.kind == "python" and c.script == "tools/main.py" for c in commands)


def _check(markdown):
    return dc.check_markdown(textwrap.dedent(markdown), "crafted.md")


def _one(command, expected):
    """``command`` alone in a bash block fails with exactly ``expected``."""
    assert _check(f"# t\n\n```bash\n{command}\n```\n") == [f"crafted.md:4: {command}: {expected}"]


def test_unknown_flag():
    _one("python tools/make_synthreid.py --root reid-data --presett small",
         "unknown flag --presett (did you mean --preset?)")
    _one("python tools/main.py --config-fil configs/dsa_synth.yaml",
         "unknown flag --config-fil (did you mean --config-file?)")
    _one("python tools/main.py --config configs/dsa_synth.yaml",  # argparse would take the prefix: the docs may not
         "unknown flag --config (did you mean --config-file?)")
    _one("python tools/main.py --config-file configs/dsa_synth.yaml data.root x --foo", "unknown flag --foo")
    _one("python tools/main.py data.root x --config-file configs/dsa_synth.yaml",
         "--config-file comes after the KEY VALUE overrides, which take it as a key: put it before them")


def test_missing_script():
    _one("python tools/nope.py --x 1", "script tools/nope.py does not exist")
    _one("python benchmarks/bench_nope.py", "script benchmarks/bench_nope.py does not exist")


def test_misspelled_config_key():
    _one("python tools/main.py --config-file configs/dsa_synth.yaml train.lrr 0.1",
         "command line: unknown config key 'train.lrr' (did you mean 'train.lr'?)")


def test_wrong_value_type():
    _one("python tools/main.py --config-file configs/dsa_synth.yaml train.max_epoch ten",
         "command line: config key 'train.max_epoch' expects int, got str 'ten'")
    _one("torchrun --nproc_per_node=2 tools/main.py --config-file configs/dsa_synth.yaml train.batch_size 6.5",
         "command line: config key 'train.batch_size' expects int, got float 6.5")
    _one("python tools/main.py --config-file configs/dsa_synth.yaml train.max_epoch",
         "command line: overrides must come in KEY VALUE pairs, got 1 items: ['train.max_epoch']")


def test_missing_config_file():
    _one("python tools/main.py --config-file configs/nope.yaml", "--config-file configs/nope.yaml: no such file")
    _one("python tools/benchmark.py --suite configs/suites/nope.yaml", "--suite configs/suites/nope.yaml: no such file")


def test_config_file_is_merged_before_the_overrides(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  max_epochs: 3\n")
    _one(f"python tools/main.py --config-file {config} train.max_epoch 2",
         f"{config}: unknown config key 'train.max_epochs' (did you mean 'train.max_epoch'?)")


def test_good_commands_with_placeholders_and_continuations():
    markdown = """\
        # t

        ```bash
        # a comment line, then a command over three lines with placeholders and a trailing comment
        python tools/main.py --config-file configs/dsa_synth.yaml \\
            data.root <root> train.max_epoch <epochs> train.stepsize "[8]" \\
            model.load_weights log/<name>/model.pth.tar-60   # evaluate
        OMP_NUM_THREADS=1 nice -n 5 python tools/export.py --config-file configs/dsa_synth.yaml \\
            --weights <checkpoint> --format onnx --opset <n>
        python tools/visualize.py textures --config-file configs/san_pg.yaml --weights ... --dataset-dir <dir> \\
            --out vis/t.png san.texture_range <range>
        python benchmarks/bench_alignment.py ... --opts not.a.key 1   # cut at '...': the rest is not checked
        python tools/benchmark.py --suite configs/suites/<name>.yaml --opts data.root $DATA
        cd reid-data && cd .. && make test demo
        pip install -e . && git status && python setup.py develop
        ```

        Inline, over a line break: `python tools/main.py --config-file configs/baseline_synth.yaml data.height 64
        data.width 32`, and `make demo`; not a command: `tools/main.py --nope`.
        """
    assert _check(markdown) == []
    commands, problems = dc.find_commands(textwrap.dedent(markdown))
    assert problems == []
    assert [(c.line, c.kind, c.script) for c in commands] == [
        (5, "python", "tools/main.py"), (8, "python", "tools/export.py"), (10, "python", "tools/visualize.py"),
        (12, "python", "benchmarks/bench_alignment.py"), (13, "python", "tools/benchmark.py"), (14, "make", None),
        (18, "python", "tools/main.py"), (19, "make", None)]
    assert commands[0].args[-4:] == ["train.stepsize", "[8]", "model.load_weights", "log/<name>/model.pth.tar-60"]
    assert commands[0].text == ("python tools/main.py --config-file configs/dsa_synth.yaml data.root <root> "
                                "train.max_epoch <epochs> train.stepsize \"[8]\" model.load_weights "
                                "log/<name>/model.pth.tar-60")
    # the same commands with the placeholders filled wrongly do fail
    assert _check(markdown.replace("<epochs>", "ten").replace("--opset <n>", "--opset n")) == [
        "crafted.md:5: python tools/main.py --config-file configs/dsa_synth.yaml data.root <root> train.max_epoch ten "
        "train.stepsize \"[8]\" model.load_weights log/<name>/model.pth.tar-60: "
        "command line: config key 'train.max_epoch' expects int, got str 'ten'",
        "crafted.md:8: OMP_NUM_THREADS=1 nice -n 5 python tools/export.py --config-file configs/dsa_synth.yaml "
        "--weights <checkpoint> --format onnx --opset n: argument --opset: invalid int value: 'n'",
    ]


def test_unknown_make_target():
    targets = dc.makefile_targets()
    assert {"test", "demo"} <= set(targets)
    _one("make tset", f"make target 'tset' is not in the Makefile (targets: {', '.join(targets)})")
    assert _check("Prose: `make demo` and `make nothing`.\n") == [
        f"crafted.md:1: make nothing: make target 'nothing' is not in the Makefile (targets: {', '.join(targets)})"]


def test_arguments_as_argparse_reads_them():
    _one("python tools/visualize.py dsapp --out x",
         "argument command: invalid choice: 'dsapp' (choose from 'dsap', 'synth', 'textures')")
    _one("python tools/visualize.py dsap --num four --out x", "argument --num: invalid int value: 'four'")
    _one("python tools/visualize.py synth --out x", "the following arguments are required: --dataset-dir")
    _one("python tools/export.py --config-file configs/dsa_synth.yaml --weights w.pth --format onxx",
         "argument --format: invalid choice: 'onxx' (choose from 'onnx', 'torchscript')")
    _one("python tools/visualize.py textures --config-file configs/san_pg.yaml --weights w --dataset-dir d --out o "
         "san.bogus 1", "command line: unknown config key 'san.bogus' (did you mean 'san.tr_blocks'?)")
    _one("python tools/generate_textures.py --config-file configs/san_pg.yaml --weights w --dataset market1501 "
         "data.workers 2", "--dataset takes every word up to the next flag, so the override 'data.workers 2' becomes "
         "one of its values: put the overrides after a one-value flag")
    # extract_densepose's --opts are detectron2's, not this project's
    assert _check("```bash\npython tools/extract_densepose.py --dataset-dir d --config c.yaml --weights w "
                  "--opts MODEL.DEVICE cpu\n```\n") == []
    assert _check("```bash\npython tools/main.py --help\n```\n") == []


def test_suite_tools():
    _one("python benchmarks/bench_alignment.py --only mf_alone --opts train.max_epoch 1.5",
         "command line: config key 'train.max_epoch' expects int, got float 1.5")
    _one("python tools/benchmark.py --suite configs/suites/synth.yaml --profile quik",
         "configs/suites/synth.yaml: no profile 'quik'; profiles: ['quick']")
    _one("python tools/benchmark.py --suite configs/suites/synth.yaml --opts data.root",
         "--opts: expected KEY VALUE pairs, got an odd number of items ['data.root']")
    problems = _check("```bash\n"
                      "python benchmarks/bench_alignment.py --only mf_alone dsa_reidd --opts train.seed 1\n```\n")
    assert len(problems) == 2
    assert "'train.seed' is set by the benchmark runner for every job" in problems[0]
    assert "configs/suites/alignment.yaml: no run named ['dsa_reidd']" in problems[1]


def test_working_folder_and_shell_syntax():
    assert _check("```bash\ncd tools\npython tools/main.py\ncd .. ; python tools/main.py\n```\n") == [
        "crafted.md:3: python tools/main.py: script tools/main.py does not exist (run from tools/)"]
    assert _check("```sh\npython tools/main.py --config-file 'configs/dsa_synth.yaml\n```\n") == [
        "crafted.md:2: python tools/main.py --config-file 'configs/dsa_synth.yaml: "
        "bash cannot read this block: unclosed ' quote"]
    # other languages are not shell
    assert _check("```python\npython tools/nope.py\n```\n```text\nmake nothing\n```\n") == []


def test_every_opts_argument_is_classified():
    """A script with KEY VALUE-like arguments is either checked as yacs overrides or listed as something else."""
    scripts = sorted(f"{folder}/{name}" for folder in ("tools", "benchmarks")
                     for name in os.listdir(osp.join(dc.REPO, folder)) if name.endswith(".py"))
    unclassified, stale = [], []
    for script in scripts:
        parser = dc.script_parser(script)
        has_opts = any(a.dest == "opts" or a.nargs == "..." or a.metavar == "KEY VALUE"
                       for p in dc.all_parsers(parser) for a in p._actions)
        if has_opts and script not in dc.YACS_OPTS and script not in dc.OTHER_OPTS:
            unclassified.append(script)
        if not has_opts and (script in dc.YACS_OPTS or script in dc.OTHER_OPTS):
            stale.append(script)
    assert not unclassified, f"add these to doc_commands.YACS_OPTS or OTHER_OPTS: {unclassified}"
    assert not stale, f"these no longer take overrides: {stale}"
    assert set(dc.YACS_OPTS) | set(dc.OTHER_OPTS) <= set(scripts)


def test_parser_is_taken_before_the_script_runs(tmp_path):
    marker = tmp_path / "ran"
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent(f"""\
        import argparse
        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--n", type=int, required=True)
            p.parse_args()
            open({str(marker)!r}, "w").close()
        if __name__ == "__main__":
            main()
        """))
    parser = dc.script_parser(str(script))
    assert not marker.exists()
    assert [a.option_strings for a in parser._actions] == [["-h", "--help"], ["--n"]]
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    with pytest.raises(RuntimeError, match="ended without parsing one with argparse"):
        dc.script_parser(str(plain))
