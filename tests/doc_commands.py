"""Check the command lines of the documentation against the code, without running them (issue 27, point 4).

Used by ``tests/test_doc_commands.py``; also a command line for whoever edits the pages::

    python tests/doc_commands.py README.md docs/*.md

**Which commands.** In a Markdown page: the lines of fenced code blocks marked ```` ```bash ````, ``sh``,
``shell``, ``console`` or unmarked (read as bash reads them: quotes, ``\\`` continuations, ``# comments``,
``&&`` / ``;`` / ``|`` between commands, ``cd DIR`` changes the folder of the commands after it in the block),
and the inline code spans of the prose. A command is checked when, after ``VAR=value`` prefixes and ``nice``
/ ``env`` / ``time`` / ``nohup``, it is ``python tools/X.py ...``, ``python benchmarks/X.py ...``,
``torchrun [...] tools/X.py ...`` (or ``python -m torch.distributed.run``) or ``make ...``; anything else (pip,
git, other scripts) is ignored.

**What is checked.** The script exists; its arguments parse with the script's own argparse parser (taken from
the script itself, see :func:`script_parser`): every ``--flag`` / ``-x`` exists, spelled in full, with the
right number of values of the right type and choice, and the required arguments are there; ``--config-file`` and
``--suite`` files exist; the yacs ``KEY VALUE`` overrides (the trailing ones of ``tools/main.py``,
``tools/export.py``, ``tools/generate_textures.py``, ``tools/visualize.py textures``; the ``--opts`` of
``tools/benchmark.py`` and ``benchmarks/bench_alignment.py``) are merged with the project's own
``DenseCfgNode.merge_from_list`` into the default config after the ``--config-file`` (for the two suite tools:
into each config file of the suite, after ``--only``), so unknown keys and wrongly typed values fail as they
would in the job; ``make X``: X is a target of the Makefile.

**Placeholders.** A word that contains ``<...>`` (``<root>``, ``log/<name>/model.pth.tar-60``) or a ``$``
(a shell variable), or starts with ``~``, stands for a value the reader supplies: it satisfies every type,
choice and file check (a placeholder config key skips its pair; a placeholder value still needs its key to exist).
``...`` as the value of a flag that takes one value is such a placeholder; ``...`` anywhere else means "more
arguments follow": the rest of the command is not checked, nor are the required arguments. Output paths
(``--output``, ``--weights``, ``model.load_weights``...) are never required to exist.
"""
import argparse
import bisect
import contextlib
import copy
import difflib
import functools
import glob
import io
import os
import os.path as osp
import posixpath
import re
import runpy
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
SCRIPT_FOLDERS = ("tools/", "benchmarks/")
# The scripts whose ``opts`` are KEY VALUE overrides of the project's yacs config, and the ones whose ``opts`` are
# something else; tests/test_doc_commands.py checks that every script with an ``opts`` argument is in one of them.
YACS_OPTS = {
    "tools/main.py": "trailing KEY VALUE overrides",
    "tools/export.py": "trailing KEY VALUE overrides",
    "tools/generate_textures.py": "trailing KEY VALUE overrides",
    "tools/visualize.py": "trailing KEY VALUE overrides of the textures command",
    "tools/benchmark.py": "--opts, for every run of the suite",
    "benchmarks/bench_alignment.py": "--opts, for every run of the suite (through tools/benchmark.py --opts)",
}
OTHER_OPTS = {
    "tools/extract_densepose.py": "--opts are detectron2 config overrides (apply_net.py's)",
}
SUITE_TOOLS = {"tools/benchmark.py", "benchmarks/bench_alignment.py"}
FILE_ARGUMENTS = {"config_file": "--config-file", "suite": "--suite"}  # dest -> flag: files that must exist
ELLIPSIS = "..."

_PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>|\$")
_PYTHON = re.compile(r"^(.*/)?python(3(\.\d+)?)?$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_REDIRECTION = re.compile(r"^(\d*|&)>>?(&\d*-?)?$")
_REDIRECTION_WITH_TARGET = re.compile(r"^(\d*|&)>>?[^>&<].*$")
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_COMMAND_START = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(cd\b|nice\b|env\b|time\b|nohup\b|python|torchrun|make)")


def is_placeholder(word):
    """``<root>``, ``log/<name>/model.pth.tar-60``, ``$DATA``, ``~/x``: a value the reader supplies."""
    return isinstance(word, str) and (word.startswith("~") or bool(_PLACEHOLDER.search(word)))


# ---------------------------------------------------------------------------------------------------------------
# shell words


class ShellSyntaxError(ValueError):
    """An unclosed quote."""


def shell_lines(text):
    """Split ``text`` as bash reads it into logical lines.

    Returns a list of ``(start, end, segments)``: ``text[start:end]`` is the logical line without its comment
    (continuation lines included), ``segments`` the simple commands of the line, each ``(operator_before,
    words)``, words with their quotes removed. Unquoted ``#`` at the start of a word begins a comment; an unescaped
    newline outside quotes ends the logical line; ``\\``-newline joins lines.
    """
    lines = []
    segments, words, word = [], [], None
    start, end, in_comment = None, None, False
    operator = None
    i, n = 0, len(text)

    def flush_word():
        nonlocal word
        if word is not None:
            words.append(word)
            word = None

    def flush_segment(next_operator):
        nonlocal words, operator
        flush_word()
        if words:
            segments.append((operator, words))
        words = []
        operator = next_operator

    def flush_line(at):
        nonlocal segments, start, end, in_comment, operator
        flush_segment(None)
        if segments:
            lines.append((start, end if end is not None else at, segments))
        segments, start, end, in_comment, operator = [], None, None, False, None

    while i < n:
        c = text[i]
        if in_comment:
            if c == "\n":
                flush_line(i)
            i += 1
            continue
        if c == "\n":
            flush_line(i)
            i += 1
            continue
        if c in " \t\r":
            flush_word()
            i += 1
            continue
        if start is None:
            start = i
        if c == "#" and word is None:
            flush_word()
            end, in_comment = i, True
            i += 1
            continue
        if c == "&" and word is not None and word.endswith(">"):  # 2>&1
            word += c
            i += 1
            continue
        if c in ";&|":
            op = text[i:i + 2] if text[i:i + 2] in ("&&", "||", ";;") else c
            flush_segment(op)
            i += len(op)
            continue
        if c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                flush_word()  # the newline is gone, the word boundary stays
                i += 2
                continue
            word = (word or "") + (text[i + 1] if i + 1 < n else "")
            i += 2
            continue
        if c == "'":
            j = text.find("'", i + 1)
            if j < 0:
                raise ShellSyntaxError("unclosed ' quote", i)
            word = (word or "") + text[i + 1:j]
            i = j + 1
            continue
        if c == '"':
            j, buf = i + 1, ""
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n and text[j + 1] in '"\\$`\n':
                    buf += text[j + 1] if text[j + 1] != "\n" else ""
                    j += 2
                else:
                    buf += text[j]
                    j += 1
            if j >= n:
                raise ShellSyntaxError('unclosed " quote', i)
            word = (word or "") + buf
            i = j + 1
            continue
        word = (word or "") + c
        i += 1
    flush_line(n)
    return lines


def _strip_redirections(words):
    """``words`` without output redirections (``> log.txt``, ``2>&1``, ``>log.txt``); ``<root>`` is a placeholder."""
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if is_placeholder(w):
            out.append(w)
        elif _REDIRECTION.match(w):
            skip = not re.search(r">&\d*-?$", w)  # '2>&1' holds its target, '>' takes the next word
        elif not _REDIRECTION_WITH_TARGET.match(w):
            out.append(w)
    return out


# ---------------------------------------------------------------------------------------------------------------
# commands of a page


class Command:
    """One checkable command of a page.

    Attributes:
        line: line number in the page (of the command's first line).
        text: the command line as written (continuations joined, comment dropped, spaces collapsed).
        kind: ``'python'`` (also torchrun) or ``'make'``.
        script: for ``'python'``, the script as written (``tools/main.py``).
        args: the words after the script (``'make'``: after ``make``).
        cwd: the folder the command runs in, relative to the repository root (``''``), after ``cd``s.
    """

    def __init__(self, line, text, kind, script, args, cwd):
        self.line, self.text, self.kind, self.script, self.args, self.cwd = line, text, kind, script, args, cwd

    def __repr__(self):
        return f"Command(line={self.line}, text={self.text!r})"


def _recognise(words, cwd):
    """``(kind, script, args)`` of a simple command, or None when it is not one to check."""
    words = _strip_redirections(words)
    i = 0
    while i < len(words):
        w = words[i]
        if _ENV_ASSIGNMENT.match(w):
            i += 1
        elif w == "nice":
            i += 1
            if i < len(words) and words[i] in ("-n", "--adjustment"):
                i += 2
            elif i < len(words) and (re.match(r"^-\d+$", words[i]) or words[i].startswith("--adjustment=")):
                i += 1
        elif w in ("env", "time", "nohup"):
            i += 1
        else:
            break
    if i >= len(words):
        return None
    head, rest = words[i], words[i + 1:]
    if head == "make":
        return "make", None, rest
    if posixpath.basename(head) == "torchrun":
        return _script_after_launcher(rest, cwd)
    if not _PYTHON.match(head):
        return None
    j = 0
    while j < len(rest) and rest[j].startswith("-"):
        if rest[j] == "-m":
            if j + 1 < len(rest) and rest[j + 1] in ("torch.distributed.run", "torch.distributed.launch"):
                return _script_after_launcher(rest[j + 2:], cwd)
            return None
        if rest[j] == "-c":
            return None
        j += 2 if rest[j] in ("-X", "-W") else 1
    if j >= len(rest):
        return None
    script = rest[j]
    if _is_script_path(script, cwd):
        return "python", script, rest[j + 1:]
    return None


def _script_after_launcher(words, cwd):
    """torchrun's script: the first word naming a tools/ or benchmarks/ file; its own options are not checked."""
    for k, w in enumerate(words):
        if not w.startswith("-") and w.endswith(".py") and _is_script_path(w, cwd):
            return "python", w, words[k + 1:]
    return None


def _is_script_path(word, cwd):
    written = posixpath.normpath(word)
    resolved = posixpath.normpath(posixpath.join(cwd or "", word)) if cwd is not None else written
    return written.startswith(SCRIPT_FOLDERS) or resolved.startswith(SCRIPT_FOLDERS)


def _collapse(text):
    return " ".join(text.replace("\\\n", " ").split())


def _commands_of_shell(text, first_line):
    """The checkable commands of shell text starting at page line ``first_line``; ShellSyntaxError passes up."""
    newlines = [k for k, c in enumerate(text) if c == "\n"]
    out = []
    cwd = ""
    for start, end, segments in shell_lines(text):
        line = first_line + bisect.bisect_left(newlines, start)
        line_text = _collapse(text[start:end])
        for _op, words in segments:
            if words[0] == "cd":
                target = words[1] if len(words) > 1 else "~"
                if cwd is None or is_placeholder(target) or target.startswith(("~", "/", "-")):
                    cwd = None
                else:
                    cwd = posixpath.normpath(posixpath.join(cwd, target))
                    cwd = "" if cwd == "." else (None if cwd.startswith("..") else cwd)
                continue
            found = _recognise(words, cwd)
            if found is not None and cwd is not None:
                kind, script, args = found
                out.append(Command(line, line_text, kind, script, list(args), cwd))
    return out


def find_commands(markdown):
    """``(commands, problems)`` of a Markdown text: the checkable :class:`Command` s of its shell blocks and
    inline code spans, and ``(line, text, problem)`` for shell blocks bash could not read (unclosed quote)."""
    lines = markdown.split("\n")
    commands, problems = [], []
    prose = []  # (line number, text) outside fences
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        fence, language = m.group(2), m.group(3).lower()
        close = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = lines[i + 1:j]
        if language in SHELL_LANGUAGES:
            if language == "console":
                body = [re.sub(r"^(\s*)\$ ", r"\1", b) for b in body]
            text = "\n".join(body)
            try:
                commands += _commands_of_shell(text, i + 2)
            except ShellSyntaxError as err:
                at = i + 2 + text[:err.args[1]].count("\n")
                problems.append((at, _collapse(body[at - i - 2]), "bash cannot read this block: " + err.args[0]))
        prose.append((i + 1, ""))  # a fence ends a paragraph
        i = j + 1
    # inline code spans, paragraph by paragraph (a span never crosses a blank line)
    paragraph = []
    for number, text in prose + [(None, "")]:
        if text.strip():
            paragraph.append((number, text))
            continue
        if paragraph:
            joined = "\n".join(t for _, t in paragraph)
            for m in _CODE_SPAN.finditer(joined):
                span = " ".join(m.group(2).split())
                line = paragraph[0][0] + joined[:m.start()].count("\n")
                if not _COMMAND_START.match(span):
                    continue
                try:
                    commands += _commands_of_shell(span, line)
                except ShellSyntaxError as err:
                    problems.append((line, span, "bash cannot read this command: " + err.args[0]))
        paragraph = []
    commands.sort(key=lambda c: c.line)
    return commands, problems


# ---------------------------------------------------------------------------------------------------------------
# the scripts' parsers


class _ParserFound(BaseException):
    """Raised by the patched ``parse_args``: carries the parser the script was about to parse with."""

    def __init__(self, parser):
        super().__init__("parser found")
        self.parser = parser


class ArgumentError(Exception):
    """What the script's argparse parser would have printed before exiting with status 2."""


_PARSERS = {}


def script_parser(script):
    """The argparse parser of ``script`` (a path relative to the repository), prepared for checking; cached.

    The script is run as ``__main__`` (as ``python script`` runs it, with ``sys.argv = [script]`` and its folder
    first on ``sys.path``) with ``ArgumentParser.parse_args`` / ``parse_known_args`` / ``parse_intermixed_args``
    replaced by a function that raises an exception carrying the parser: the script stops at its first parse,
    before any work. Raises RuntimeError when the script ends, or fails, without parsing.
    """
    if script in _PARSERS:
        parser = _PARSERS[script]
        if isinstance(parser, Exception):
            raise parser
        return parser
    path = osp.join(REPO, script)

    def found(self, *args, **kwargs):
        raise _ParserFound(self)

    names = ("parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args")
    saved = {name: argparse.ArgumentParser.__dict__[name] for name in names if name in argparse.ArgumentParser.__dict__}
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    result = None
    try:
        for name in saved:
            setattr(argparse.ArgumentParser, name, found)
        sys.argv = [path]
        sys.path.insert(0, osp.dirname(path))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            runpy.run_path(path, run_name="__main__")
        result = RuntimeError(f"cannot read the command line of {script}: it ended without parsing one with argparse")
    except _ParserFound as got:
        result = _prepare(got.parser)
    except SystemExit as err:
        result = RuntimeError(f"cannot read the command line of {script}: it exited ({err.code}) before parsing it")
    except Exception as err:  # noqa: BLE001 (any failure of the script is reported as such)
        result = RuntimeError(f"cannot read the command line of {script}: {type(err).__name__}: {err}")
    finally:
        for name, value in saved.items():
            setattr(argparse.ArgumentParser, name, value)
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path
    _PARSERS[script] = result
    if isinstance(result, Exception):
        raise result
    return result


class _Choices(list):
    """A flag's choices, which also accept placeholders."""

    def __contains__(self, value):
        return is_placeholder(value) or list.__contains__(self, value)


def _placeholder_type(convert):
    @functools.wraps(convert)
    def parse(text):
        return text if is_placeholder(text) else convert(text)

    return parse


def _raise_error(message):
    raise ArgumentError(message)


def all_parsers(parser):
    """``parser`` and its sub-commands' parsers, recursively."""
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out += all_parsers(sub)
    return out


def _prepare(parser):
    """A copy of ``parser`` that raises :class:`ArgumentError` instead of exiting, takes no abbreviated flags,
    and accepts placeholders as any flag's value."""
    try:
        parser = copy.deepcopy(parser)
    except Exception:  # noqa: BLE001 (an uncopyable parser is used as it is: it was built for us)
        pass
    for p in all_parsers(parser):
        p.allow_abbrev = False
        p.error = _raise_error
        for action in p._actions:
            if action.type is not None and callable(action.type):
                action.type = _placeholder_type(action.type)
            if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
                action.choices = _Choices(action.choices)
    return parser


@contextlib.contextmanager
def _nothing_required(parser):
    """Turn off the required arguments of ``parser`` and its sub-commands (for commands cut at ``...``)."""
    saved = []
    for p in all_parsers(parser):
        for action in p._actions:
            saved.append((action, action.required))
            action.required = False
        for group in p._mutually_exclusive_groups:
            saved.append((group, group.required))
            group.required = False
    try:
        yield
    finally:
        for obj, required in saved:
            obj.required = required


def _takes_one_value(parser, flag):
    for p in all_parsers(parser):
        action = p._option_string_actions.get(flag.split("=", 1)[0])
        if action is not None:
            return action.nargs in (None, 1, "?") and "=" not in flag
    return False


def _cut_at_ellipsis(parser, args):
    """``(args, cut)``: ``...`` as a flag's value becomes a placeholder; any other ``...`` cuts the command."""
    out = []
    for k, word in enumerate(args):
        if word == ELLIPSIS:
            if k > 0 and args[k - 1].startswith("-") and _takes_one_value(parser, args[k - 1]):
                out.append("<...>")
                continue
            return out, True
        out.append(word)
    return out, False


def _unknown_word_problem(parser, namespace, word):
    if word.startswith("-") and len(word) > 1 and not _NEGATIVE_NUMBER.match(word):
        flag = word.split("=", 1)[0]
        known = [s for p in _active_parsers(parser, namespace) for s in p._option_string_actions]
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        return f"unknown flag {flag}" + (f" (did you mean {close[0]}?)" if close else "")
    return f"unexpected argument {word!r}"


def _active_parsers(parser, namespace):
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(namespace, action.dest, None) if action.dest != argparse.SUPPRESS else None
            if chosen in action.choices:
                out += _active_parsers(action.choices[chosen], namespace)
    return out


# ---------------------------------------------------------------------------------------------------------------
# config overrides


def _clean(message):
    return str(message).replace(REPO + os.sep, "")


def _config_with_file(config_file):
    """The default config merged with ``config_file`` (an existing path, or None)."""
    from torchreid_dense.config import get_default_config

    cfg = get_default_config()
    if config_file:
        cfg.merge_from_file(config_file)
    return cfg


def _current_value(cfg, key):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def check_overrides(opts, config_file=None, cut=False):
    """Problems of yacs ``KEY VALUE`` overrides merged after ``config_file`` (None: the defaults alone).

    Every pair is merged with the project's ``merge_from_list`` into a fresh config (after the file), so unknown
    keys and wrongly typed values give the job's own message. A placeholder value takes the key's current value
    (the key must still exist); a placeholder key skips its pair. ``cut``: the command was cut at ``...``, so a last
    key without its value is only checked to exist.
    """
    from torchreid_dense.config import ConfigKeyError, ConfigValueError

    problems = []
    try:
        base = _config_with_file(config_file)
    except (ConfigKeyError, ConfigValueError, FileNotFoundError) as err:
        return [_clean(err)]
    opts = list(opts)
    if len(opts) % 2:
        if not cut:
            try:
                base.clone().merge_from_list(opts)
            except (ConfigKeyError, ConfigValueError) as err:
                return [_clean(err)]
        opts.append("<...>")
    for key, value in zip(opts[0::2], opts[1::2]):
        if is_placeholder(key):
            continue
        cfg = base.clone()
        if is_placeholder(value):
            current, exists = _current_value(cfg, key)
            if exists and not isinstance(current, dict):
                value = current
        try:
            cfg.merge_from_list([key, value])
        except (ConfigKeyError, ConfigValueError) as err:
            problems.append(_clean(err))
    return problems


def _check_suite_overrides(namespace, suite_path, opts, cut):
    """``tools/benchmark.py`` / ``bench_alignment.py``: the suite loads with its ``--profile`` and ``--only``, and the
    ``--opts`` (as the runner takes them: ``opts_to_list``) merge into each config file of the selected runs."""
    from torchreid_dense.benchmark.suite import SuiteError, load_suite, opts_to_list

    problems = []
    opts = list(opts or [])
    if cut and len(opts) % 2:
        opts = opts[:-1]
    try:
        opts = opts_to_list(opts, "--opts")
    except SuiteError as err:
        problems.append(_clean(err))
        opts = None
    profile = getattr(namespace, "profile", None)
    only = getattr(namespace, "only", None)
    if suite_path is None or is_placeholder(profile):
        return problems + (check_overrides(opts) if opts else [])
    try:
        suite = load_suite(suite_path, profile=profile or None)
        if only and not any(is_placeholder(name) for name in only):
            suite = suite.select(only)
    except SuiteError as err:
        return problems + [_clean(err)]
    for run in suite.runs if opts else ():
        config = run.config if osp.isabs(run.config) else osp.join(REPO, run.config)
        for problem in check_overrides(run.command_line_opts(opts), config):
            if problem not in problems:
                problems.append(problem)
    return problems


# ---------------------------------------------------------------------------------------------------------------
# checking


def makefile_targets(path=osp.join(REPO, "Makefile")):
    """The explicit targets of a Makefile (not the special ``.X`` ones, not ``$(VAR)`` ones)."""
    targets = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)", line)
            if m:
                targets += [t for t in m.group(1).split() if not t.startswith(".") and "$" not in t]
    return list(dict.fromkeys(targets))


def _check_make(args):
    targets = makefile_targets()
    problems = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word in ("-C", "-f", "-j", "-l", "-o", "-W", "--directory", "--file"):
            skip = word not in ("-j",)  # -j may go without a number
            continue
        if word.startswith("-") or _ENV_ASSIGNMENT.match(word) or word.isdigit() or is_placeholder(word):
            continue
        if word not in targets:
            problems.append(f"make target {word!r} is not in the Makefile (targets: {', '.join(targets)})")
    return problems


def _check_python(command):
    cwd = command.cwd
    path = posixpath.normpath(posixpath.join(cwd, command.script))
    if not osp.isfile(osp.join(REPO, path)):
        where = f" (run from {cwd}/)" if cwd else ""
        return [f"script {command.script} does not exist{where}"]
    try:
        parser = script_parser(path)
    except RuntimeError as err:
        return [str(err)]
    args, cut = _cut_at_ellipsis(parser, command.args)
    problems = []
    with (_nothing_required(parser) if cut else contextlib.nullcontext()):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                namespace, extras = parser.parse_known_args(args)
        except SystemExit:  # --help, --version
            return []
        except ArgumentError as err:
            return [str(err)]
    after_unknown_flag = False
    for word in extras:
        problem = _unknown_word_problem(parser, namespace, word)
        if problem.startswith("unknown flag"):
            problems.append(problem)
            after_unknown_flag = "=" not in word
        elif not after_unknown_flag:  # the values of an unknown flag are not reported again
            problems.append(problem)
    if problems:
        return problems
    files = {}
    for dest, flag in FILE_ARGUMENTS.items():
        value = getattr(namespace, dest, None)
        if not value or not isinstance(value, str):
            continue
        if is_placeholder(value):
            files[dest] = None
            continue
        full = value if osp.isabs(value) else osp.join(REPO, cwd, value)
        if osp.isfile(full):
            files[dest] = full
        elif flag in command.args or any(a.startswith(flag + "=") for a in command.args):
            problems.append(f"{flag} {value}: no such file")
        else:  # a default the script resolves itself
            files[dest] = full if osp.isfile(full) else None
    if problems:
        return problems
    if path in YACS_OPTS:
        problems += _swallowed_overrides(parser, namespace)
    opts = getattr(namespace, "opts", None)
    if path in SUITE_TOOLS:
        return problems + _check_suite_overrides(namespace, files.get("suite"), opts, cut)
    if path in YACS_OPTS and opts:
        # a flag after the trailing overrides lands in them (argparse.REMAINDER): no config key starts with '-'
        flags = [w for w in opts[0::2] if w.startswith("-") and not _NEGATIVE_NUMBER.match(w)]
        if flags:
            known = {s for p in _active_parsers(parser, namespace) for s in p._option_string_actions}
            return [f"{w.split('=', 1)[0]} comes after the KEY VALUE overrides, which take it as a key: put it before "
                    "them" if w.split("=", 1)[0] in known else _unknown_word_problem(parser, namespace, w)
                    for w in flags]
        problems += check_overrides(opts, files.get("config_file"), cut)
    return problems


def _swallowed_overrides(parser, namespace):
    """A many-valued flag (``nargs='+'``) just before the trailing overrides takes them as its values."""
    from torchreid_dense.config import get_default_config

    cfg = get_default_config()
    problems = []
    for p in _active_parsers(parser, namespace):
        for action in p._actions:
            if action.nargs not in ("+", "*") or action.dest == "opts" or not action.option_strings:
                continue
            values = [v for v in getattr(namespace, action.dest, None) or [] if isinstance(v, str)]
            keys = [k for k, v in enumerate(values) if "." in v and _current_value(cfg, v)[1]]
            if keys:
                override = " ".join(values[keys[0]:keys[0] + 2])
                problems.append(f"{action.option_strings[-1]} takes every word up to the next flag, so the override "
                                f"'{override}' becomes one of its values: put the overrides after a one-value flag")
    return problems


def check_command(command):
    """The problems of one :class:`Command` (an empty list when it would start as written)."""
    if command.kind == "make":
        return _check_make(command.args)
    return _check_python(command)


def check_markdown(text, name):
    """``name:line: command: problem`` for every problem of the commands of the Markdown ``text``."""
    commands, problems = find_commands(text)
    found = [(line, t, p) for line, t, p in problems]
    for command in commands:
        found += [(command.line, command.text, p) for p in check_command(command)]
    found.sort(key=lambda item: item[0])
    return [f"{name}:{line}: {t}: {p}" for line, t, p in found]


def check_page(path):
    """:func:`check_markdown` of a file (named relative to the repository)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    name = osp.relpath(path, REPO) if osp.abspath(path).startswith(REPO + os.sep) else path
    return check_markdown(text, name)


def documentation_pages():
    """README.md and docs/*.md (relative paths), those present."""
    pages = ["README.md"] if osp.isfile(osp.join(REPO, "README.md")) else []
    return pages + sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, "docs", "*.md")))


def main(argv=None):
    pages = argv if argv else [osp.join(REPO, p) for p in documentation_pages()]
    failures = [line for page in pages for line in check_page(page)]
    print("\n".join(failures) if failures else f"all commands of {len(pages)} page(s) check")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
