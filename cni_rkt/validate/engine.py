"""Run every check for a set of inputs and collect one Report (nothing here prints or exits)."""

from __future__ import annotations

from cni_rkt.validate.checks import Profile, check_document
from cni_rkt.validate.config import ProjectConfig
from cni_rkt.validate.directory import check_directory
from cni_rkt.validate.document import Document
from cni_rkt.validate.findings import Finding, Report
from cni_rkt.validate.loader import expand_inputs, load_document
from cni_rkt.validate.rkt import is_rkt_path
from cni_rkt.validate.schemas import SchemaSet


class Options:
    """What one run checks beyond the paths (keyword-only; every option has a default)."""

    __slots__ = ("runtime", "kvm", "schema_dirs", "cni_path", "subnet_env", "ignore", "config", "stdin_text",
                 "stdin_name")

    def __init__(self, *, runtime: str | None = None, kvm: bool = False, schema_dirs: list[str] = (),
                 cni_path: list[str] | None = None, subnet_env: str | None = None, ignore: list[str] = (),
                 config: ProjectConfig | None = None, stdin_text: str | None = None, stdin_name: str = "<stdin>"):
        self.runtime = runtime  # None: rkt for paths under rkt/net.d, otherwise libcni for directories
        self.kvm = kvm
        self.schema_dirs = list(schema_dirs)
        self.cni_path = cni_path
        self.subnet_env = subnet_env
        self.ignore = list(ignore)
        self.config = config if config is not None else ProjectConfig()
        self.stdin_text = stdin_text
        self.stdin_name = stdin_name


def validate(paths: list[str], options: Options) -> Report:
    report = Report()
    schemas = SchemaSet(options.schema_dirs)
    inputs = expand_inputs(paths)
    unreadable = list(inputs.unreadable)
    docs: list[Document] = []
    extra: list[Finding] = []
    for path in inputs.files:
        try:
            doc = load_document(path)
        except OSError as exc:
            unreadable.append((path, exc.strerror or str(exc)))
            continue
        check_document(doc, schemas, profile_for(path, options, directory=False))
        docs.append(doc)
    if inputs.stdin and options.stdin_text is not None:
        doc = Document.from_text(options.stdin_name, options.stdin_text)
        check_document(doc, schemas, profile_for(options.stdin_name, options, directory=False))
        docs.append(doc)
    for directory in inputs.directories:
        dir_docs, dir_findings = check_directory(directory, schemas, profile_for(directory, options, directory=True),
                                                 unreadable)
        docs.extend(dir_docs)
        extra.extend(dir_findings)
    if options.cni_path is not None or options.subnet_env:
        from cni_rkt.validate.environment import check_environment

        try:
            extra.extend(check_environment(docs, options.cni_path, options.subnet_env, report.sources))
        except OSError as exc:
            unreadable.append((options.subnet_env, exc.strerror or str(exc)))
    if inputs.manifests:
        from cni_rkt.validate.manifests import check_manifest

        for path in inputs.manifests:
            try:
                extra.extend(check_manifest(path, report.sources))
            except OSError as exc:
                unreadable.append((path, exc.strerror or str(exc)))
    for doc in docs:
        report.files.append(doc.path)
        report.sources[doc.path] = doc.text
        extra.extend(doc.findings)
    report.files.extend(inputs.manifests)
    report.unreadable = [f"{path}: {why}" for path, why in unreadable]
    report.findings = options.config.apply(extra, options.ignore)
    return report


def profile_for(path: str, options: Options, *, directory: bool) -> Profile:
    runtime = options.runtime
    if runtime is None:
        if is_rkt_path(path):
            runtime = "rkt"
        elif directory:
            runtime = "libcni"
    return Profile(runtime=runtime, kvm=options.kvm)
