"""`fundguard` command line: one module per command in `pipelines/commands/`.

A command module exposes `add_arguments(parser)` and `run(args) -> int`, and its docstring (description,
an example, the exit codes) is the command's help; it is imported only when its command runs, so
`fundguard --help` stays fast and a missing optional extra (Spark, Airflow) only affects the commands
that need it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from pipelines import config, logs
from pipelines.contract import EXIT_BAD_INPUT, EXIT_LAKE_BUSY

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("pipelines.commands.synth", "generate a sample district drop with an answer key 生成样例数据"),
    "ingest": ("pipelines.commands.ingest", "load a landing drop into bronze/silver Delta tables 数据入湖"),
    "screen": ("pipelines.commands.screen", "run the rule library into staging 规则筛查"),
    "gate": ("pipelines.commands.publish", "run the quality gate on staging 质量门禁"),
    "publish": ("pipelines.commands.publish", "gate then publish staging to gold/suspects 发布疑点清单"),
    "run": ("pipelines.commands.run", "ingest, screen, gate and publish in one go 一键运行"),
    "reproduce": ("pipelines.commands.reproduce", "re-screen a published run from its recorded inputs 复现"),
    "export": ("pipelines.commands.export", "write one institution's audit package 导出机构疑点包"),
    "rules": ("pipelines.commands.rules", "list, lint and show the rule catalog 规则目录"),
    "feedback": ("pipelines.commands.feedback", "ingest institution answers 机构自查反馈"),
    "worksheet": ("pipelines.commands.worksheet", "on-site worksheets 现场检查工作底稿"),
    "sample": ("pipelines.commands.sample", "双随机一公开: draw targets and inspectors"),
    "report": ("pipelines.commands.report", "period report 期间报告"),
    "case": ("pipelines.commands.case", "case status, history and recovery 案件跟踪与追回"),
    "recheck": ("pipelines.commands.recheck", "回头看: problems found last period that persist"),
    "maintain": ("pipelines.commands.maintain", "Delta optimize/vacuum 表维护"),
    "kb": ("pipelines.commands.kb", "import the national knowledge base as versioned releases 国家知识库导入"),
    "analyze": ("pipelines.commands.analyze", "indicators, peer outliers, item watch, institution risk 机构风险分析"),
    "serve": ("pipelines.commands.serve", "check claims at settlement time over HTTP 事中审核服务"),
}


def build_parser(commands: dict[str, tuple[str, str]] = COMMANDS) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="fundguard", description="FundGuard 医保基金监管疑点筛查",
        epilog="exit codes: 0 done; 1 gate failed / nothing published / rows rejected; 2 bad input or usage; "
               "3 the lake is busy (another writer holds it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_) in commands.items():
        p = sub.add_parser(name, help=help_)
        if name == wanted:
            mod = importlib.import_module(module)
            p.description, p.formatter_class = mod.__doc__, argparse.RawDescriptionHelpFormatter
            mod.add_arguments(p)
            modules[name] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser, modules = build_parser()
    args = parser.parse_args()
    logs.configure()
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    return run_command(args.command, modules[args.command], args)


def run_command(name: str, module, args) -> int:
    """Run one command; what it could not do becomes a message and an exit code, never a traceback:
    2 bad input or usage (a bad path, a missing or unwritable folder), 3 the lake is busy (another writer
    holds it: the message names the holder)."""
    from pipelines.contract import UsageError
    from pipelines.storage.lock import LakeBusy

    try:
        config.pii_key()                      # outside dev/ci, no command starts without a real PII key
        return int(module.run(args) or 0)
    except LakeBusy as exc:
        print(f"fundguard {name}: {exc}", file=sys.stderr)
        return EXIT_LAKE_BUSY
    except UsageError as exc:
        print(f"fundguard {name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"fundguard {name}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
