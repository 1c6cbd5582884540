"""`fundguard` command line. Each sub-command lives in the module that owns the capability.

A command module exposes `add_arguments(parser)` and `run(args) -> int`; it is imported only when its
command runs, so `fundguard --help` stays fast and a missing optional extra (Spark, Airflow) only
affects the commands that need it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("pipelines.synth.cli", "generate a sample district drop with an answer key 生成样例数据"),
    "ingest": ("pipelines.ingest.cli", "load a landing drop into bronze/silver Delta tables 数据入湖"),
    "screen": ("pipelines.screen.cli", "run the rule library into staging 规则筛查"),
    "gate": ("pipelines.publish.cli", "run the quality gate on staging 质量门禁"),
    "publish": ("pipelines.publish.cli", "gate then publish staging to gold/suspects 发布疑点清单"),
    "run": ("pipelines.run", "ingest, screen, gate and publish in one go 一键运行"),
    "reproduce": ("pipelines.publish.reproduce", "re-screen a published run from its recorded inputs 复现"),
    "export": ("pipelines.export.cli", "write one institution's audit package 导出机构疑点包"),
    "rules": ("pipelines.screen.catalog_cli", "list and lint the rule catalog 规则目录"),
    "feedback": ("pipelines.workflow.cli_feedback", "ingest institution answers 机构自查反馈"),
    "worksheet": ("pipelines.workflow.cli_worksheet", "on-site worksheets 现场检查工作底稿"),
    "sample": ("pipelines.workflow.cli_sample", "双随机一公开: draw targets and inspectors"),
    "report": ("pipelines.workflow.cli_report", "period report 期间报告"),
    "case": ("pipelines.workflow.cli_case", "case status, history and recovery 案件跟踪与追回"),
    "recheck": ("pipelines.workflow.cli_recheck", "回头看: problems found last period that persist"),
    "maintain": ("pipelines.storage_cli", "Delta optimize/vacuum 表维护"),
    "serve": ("pipelines.commands.serve", "check claims at settlement time over HTTP 事中审核服务"),
}


def build_parser(commands: dict[str, tuple[str, str]] = COMMANDS) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="fundguard", description="FundGuard 医保基金监管疑点筛查")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_) in commands.items():
        p = sub.add_parser(name, help=help_)
        if name == wanted:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            modules[name] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser, modules = build_parser()
    args = parser.parse_args()
    if not args.command:
        parser.print_help()
        return 2
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
