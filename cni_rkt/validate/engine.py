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
    run = _Run(options)
    inputs = expand_inputs(paths)
    run.unreadable.extend(inputs.unreadable)
    for path in inputs.files:
        run.read_and_check(path)
    if inputs.stdin and options.stdin_text is not None:
        run.check(Document.from_text(options.stdin_name, options.stdin_text))
    for directory in inputs.directories:
        docs, findings = check_directory(directory, run.schemas, profile_for(directory, options, directory=True),
                                         run.unreadable)
        run.docs.extend(docs)
        run.extra.extend(findings)
    if options.cni_path is not None or options.subnet_env:
        run.check_environment()
    for path in inputs.manifests:
        run.check_manifest(path)
    return run.report()


class _Run:
    """The state of one validate() call: documents checked, extra findings, unreadable inputs."""

    def __init__(self, options: Options):
        self.options = options
        self.schemas = SchemaSet(options.schema_dirs)  # validators are built once per run
        self.docs: list[Document] = []
        self.extra: list[Finding] = []  # findings that belong to no document (directories, manifests, subnet.env)
        self.sources: dict[str, str] = {}  # texts of non-document inputs, for snippets
        self.files: list[str] = []  # manifests and other non-document inputs that were read
        self.unreadable: list[tuple[str, str]] = []

    def read_and_check(self, path: str) -> None:
        try:
            doc = load_document(path)
        except OSError as exc:
            self.unreadable.append((path, exc.strerror or str(exc)))
            return
        self.check(doc)

    def check(self, doc: Document) -> None:
        check_document(doc, self.schemas, profile_for(doc.path, self.options, directory=False))
        self.docs.append(doc)

    def check_environment(self) -> None:
        from cni_rkt.validate.environment import check_environment

        try:
            self.extra.extend(check_environment(self.docs, self.options.cni_path, self.options.subnet_env,
                                                self.sources))
        except OSError as exc:
            self.unreadable.append((self.options.subnet_env, exc.strerror or str(exc)))

    def check_manifest(self, path: str) -> None:
        from cni_rkt.validate.manifests import check_manifest

        try:
            self.extra.extend(check_manifest(path, self.sources))
            self.files.append(path)
        except OSError as exc:
            self.unreadable.append((path, exc.strerror or str(exc)))

    def report(self) -> Report:
        report = Report(files=[doc.path for doc in self.docs] + self.files, sources=dict(self.sources))
        findings = list(self.extra)
        for doc in self.docs:
            report.sources[doc.path] = doc.text
            findings.extend(doc.findings)
        report.unreadable = [f"{path}: {why}" for path, why in self.unreadable]
        report.findings = self.options.config.apply(findings, self.options.ignore)
        return report


def profile_for(path: str, options: Options, *, directory: bool) -> Profile:
    """rkt for paths under rkt/net.d; directories otherwise model libcni; single files no runtime."""
    runtime = options.runtime
    if runtime is None:
        if is_rkt_path(path):
            runtime = "rkt"
        elif directory:
            runtime = "libcni"
    return Profile(runtime=runtime, kvm=options.kvm)
