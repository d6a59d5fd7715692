"""The course site, built the way `nox -s docs` builds it, from a copy of the repository.

The copy gets results pages rendered from fresh runs of lab 2 and of the other labs of the
noxfile's RESULTS_LABS (never committed ones), then
`mkdocs build --strict` must pass, every page of the nav must exist, every internal link,
anchor and snippet must resolve, and no page may load a script, stylesheet, font or image from
the network. Last, headless Chromium renders the lab 2 results page: the versioned app graph
must be in the DOM, and the page may request nothing but 127.0.0.1. Its screenshot is kept in
reports/ as an artifact.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

from meshlab.pipeline import RunOptions, run_lab
from meshlab.report.model import RunReport
from meshlab.report.page import render_page

pytestmark = pytest.mark.envoy  # the results page comes from a real run of lab 2

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
RESULTS_PAGE = "results/lab-2-traffic.md"
MKDOCS_BUILD = [sys.executable, "-m", "mkdocs", "build", "--strict"]
SNIPPET = re.compile(r'^\s*-{1,}8<-{1,}\s+"(?P<path>[^"]+)"\s*$')
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
# Tags and attributes that make a browser fetch something when the page is shown.
LOADING = {
    ("script", "src"),
    ("link", "href"),
    ("img", "src"),
    ("img", "srcset"),
    ("iframe", "src"),
    ("source", "src"),
    ("source", "srcset"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
    ("image", "href"),
    ("use", "href"),
    ("input", "src"),
}
LINK_RELS_NOT_LOADED = {"canonical", "alternate", "author", "license", "next", "prev", "help"}


# ------------------------------------------------------------------------------------------
# Building the site once per test session


@dataclass(frozen=True)
class Site:
    source: Path  # mkdocs.yml and docs/, copied from the repository, plus the results page
    out: Path  # the built site
    log: str  # what mkdocs printed

    @property
    def docs(self) -> Path:
        return self.source / "docs"


@pytest.fixture(scope="session")
def lab2_report() -> dict[str, Any]:
    return run_lab(ROOT / "labs" / "2-traffic").model().model_dump(mode="json")


def results_labs() -> list[str]:
    """RESULTS_LABS of noxfile.py (read, not imported: the test env need not have nox)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "RESULTS_LABS" for t in node.targets
        ):
            labs = ast.literal_eval(node.value)
            assert isinstance(labs, list)
            return [str(lab) for lab in labs]
    raise AssertionError("noxfile.py has no RESULTS_LABS")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, lab2_report: dict[str, Any]) -> Site:
    source = tmp_path_factory.mktemp("site-source")
    shutil.copy2(ROOT / "mkdocs.yml", source / "mkdocs.yml")
    # docs/results/ holds generated pages: leave out whatever a previous build left there.
    shutil.copytree(ROOT / "docs", source / "docs", ignore=_ignore_results)
    page = source / "docs" / RESULTS_PAGE
    page.parent.mkdir(parents=True)
    report = RunReport.model_validate(lab2_report)
    page.write_text(render_page(report, "reports/lab-2-traffic.json"), encoding="utf-8")
    # The other labs' results pages the nav lists (noxfile's RESULTS_LABS), as `nox -s docs`
    # makes them, from real runs of 10 requests per check (the pages' structure and links are
    # under test here, not the labs' verdicts).
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = [re.fullmatch(r"results/lab-([\w-]+)\.md", p) for p in _nav_pages(config["nav"])]
    for name in sorted({m.group(1) for m in listed if m} - {"2-traffic"}):
        other = run_lab(ROOT / "labs" / name, RunOptions(requests=10)).model()
        (page.parent / f"lab-{name}.md").write_text(
            render_page(other, f"reports/lab-{name}.json"), encoding="utf-8"
        )
    out = source / "site"
    done = subprocess.run(
        [*MKDOCS_BUILD, "-f", str(source / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,  # snippets' base_path "." is the repository root, as in `nox -s docs`
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return Site(source, out, log)


def _ignore_results(folder: str, names: list[str]) -> set[str]:
    return {"results"} if Path(folder).resolve() == (ROOT / "docs").resolve() else set()


# ------------------------------------------------------------------------------------------
# Reading the built pages


@dataclass
class Page(HTMLParser):
    """Every id, every reference to another resource, and the text of a built page."""

    ids: set[str] = field(default_factory=set)
    refs: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    _in_style: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("id", "name"):
            if values.get(name):
                self.ids.add(values[name])
        for name in ("href", "src", "srcset", "data", "poster", "xlink:href"):
            if name in values:
                self.refs.append((tag, name.removeprefix("xlink:"), values[name], values))
        if values.get("style"):
            self.styles.append(values["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.chunks).split())


@functools.cache
def _parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _html_pages(site: Site) -> list[Path]:
    return sorted(p for p in site.out.rglob("*.html") if p.name != "404.html")


def _url_of(site: Site, page: Path) -> str:
    return "/" + page.relative_to(site.out).as_posix().removesuffix("index.html")


def _target(site: Site, url: str) -> Path | None:
    path = site.out / unquote(url).lstrip("/")
    if url.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def _nav_pages(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_pages(value)


def _built_page(site: Site, source: str) -> Path:
    """docs/a/b.md -> site/a/b/index.html; docs/a/index.md -> site/a/index.html."""
    stem = source.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site.out / f"{stem}.html"
    return site.out / stem / "index.html"


# ------------------------------------------------------------------------------------------
# The build


def test_the_site_builds_strictly_without_warnings(site: Site) -> None:
    assert "WARNING" not in site.log, site.log
    assert (site.out / "index.html").is_file()


def test_every_page_in_the_nav_exists_and_was_built(site: Site) -> None:
    config = yaml.safe_load((site.source / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = [p for p in _nav_pages(config["nav"]) if not REMOTE.match(p)]
    assert RESULTS_PAGE in pages
    results = {p for p in pages if p.startswith("results/")}
    assert results == {f"results/lab-{lab}.md" for lab in results_labs()}, "nav vs RESULTS_LABS"
    for source in pages:
        assert (site.docs / source).is_file(), f"nav entry {source} has no file in docs/"
        assert _built_page(site, source).is_file(), f"{source} was not built"
    on_disk = {p.relative_to(site.docs).as_posix() for p in site.docs.rglob("*.md")}
    assert on_disk <= set(pages), f"pages not in the nav of mkdocs.yml: {on_disk - set(pages)}"


def test_the_course_notes_link_to_the_rendered_course_files(site: Site) -> None:
    notes = _built_page(site, "course/traffic-management/traffic-canary-notes.md")
    parsed = _parse(notes)
    assert "Doing canaries with fidelity on just K8s is kindof a pain I guess." in parsed.text
    linked = {
        _target(site, urlsplit(urljoin(_url_of(site, notes), value)).path)
        for tag, _, value, _ in parsed.refs
        if tag == "a" and "CourseFiles/2-Traffic-Starting" in value  # (not the other sections')
    }
    expected = {
        _built_page(site, f"CourseFiles/2-Traffic-Starting/{name}.md")
        for name in ("index", "istio-vs", "istio-dr", "kiali-created-vs", "kiali-created-dr")
    }
    assert linked == expected
    lectures = _parse(_built_page(site, "course/traffic-management/lectures-20-26-notes.md"))
    assert "A destination rule is a configuration for a load balancer" in lectures.text


def test_the_course_files_index_links_every_file_it_lists(site: Site) -> None:
    index = _built_page(site, "CourseFiles/2-Traffic-Starting/index.md")
    hrefs = {value for tag, _, value, _ in _parse(index).refs if tag == "a"}
    for name in ("istio-vs", "istio-dr", "kiali-created-vs", "kiali-created-dr"):
        assert f"{name}/" in hrefs, f"the index does not link the page of {name}.yaml"
        page = _parse(_built_page(site, f"CourseFiles/2-Traffic-Starting/{name}.md"))
        yaml_text = (ROOT / "CourseFiles/2-Traffic-Starting" / f"{name}.yaml").read_text()
        assert " ".join(yaml_text.split()) in page.text  # the whole file, highlighted


def test_every_internal_link_and_anchor_resolves(site: Site) -> None:
    broken = []
    for page in _html_pages(site):
        base = _url_of(site, page)
        for tag, attr, value, _ in _parse(page).refs:
            if tag != "a" or attr != "href" or not value or REMOTE.match(value):
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", value, re.IGNORECASE):  # mailto:, data:
                continue
            parts = urlsplit(urljoin(base, value))
            target = _target(site, parts.path) if parts.path != base else page
            where = f"{page.relative_to(site.out)}: {value}"
            if target is None:
                broken.append(f"{where} (no such page)")
            elif parts.fragment and unquote(parts.fragment) not in _parse(target).ids:
                broken.append(f"{where} (no anchor #{parts.fragment})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_snippet_was_included(site: Site) -> None:
    checked = 0
    for source in sorted(site.docs.rglob("*.md")):
        page = _built_page(site, source.relative_to(site.docs).as_posix())
        text = _parse(page).text
        for line in source.read_text(encoding="utf-8").splitlines():
            match = SNIPPET.match(line)
            if not match:
                continue
            included = _snippet_text(ROOT, match["path"])
            if (
                match["path"].partition(":")[0].endswith(".md")
            ):  # Markdown: compare the prose, as rendered
                included = [_plain(li) for li in included if not re.match(r"\s*[-|#<]", li)]
            sample = [" ".join(li.split()) for li in included if len(li.split()) >= 2][:3]
            assert sample, f"{source.name}: snippet {match['path']} is empty"
            for expected in sample:
                assert expected in text, f"{page}: the text of {match['path']} is missing"
            checked += 1
        assert "--8<--" not in text, f"{page} shows a snippet marker instead of the file"
    assert checked >= 10


def _plain(markdown: str) -> str:
    """A line of Markdown prose as it reads on the page: no code marks, emphasis or links."""
    text = re.sub(r"\[([^\]]*)\](?:\[[^\]]*\]|\([^)]*\))", r"\1", markdown)
    return text.replace("`", "").replace("**", "")


def _snippet_text(root: Path, spec: str) -> list[str]:
    path, _, section = spec.partition(":")
    lines = (root / path).read_text(encoding="utf-8").splitlines()
    if not section:
        return lines
    start = next(i for i, li in enumerate(lines) if f"[start:{section}]" in li)
    end = next(i for i, li in enumerate(lines) if f"[end:{section}]" in li)
    return lines[start + 1 : end]


def test_no_page_loads_anything_from_the_network(site: Site) -> None:
    remote = []
    for page in _html_pages(site):
        parsed = _parse(page)
        for tag, attr, value, attrs in parsed.refs:
            if (tag, attr) not in LOADING:
                continue
            rels = set(attrs.get("rel", "").lower().split())
            if tag == "link" and rels and rels <= LINK_RELS_NOT_LOADED:
                continue
            urls = (
                [u.split()[0] for u in value.split(",") if u.strip()]
                if "srcset" in attr
                else [value]
            )
            remote += [
                f"{page.relative_to(site.out)}: <{tag} {attr}={u}>" for u in urls if REMOTE.match(u)
            ]
        for style in parsed.styles:
            remote += [
                f"{page.relative_to(site.out)}: {u}" for u in _css_urls(style) if REMOTE.match(u)
            ]
    for sheet in site.out.rglob("*.css"):
        remote += [
            f"{sheet.relative_to(site.out)}: {u}"
            for u in _css_urls(sheet.read_text())
            if REMOTE.match(u)
        ]
    assert not remote, "remote resources:\n" + "\n".join(remote)


def _css_urls(css: str) -> list[str]:
    return [a or b for a, b in CSS_URL.findall(css)]


def test_the_results_page_has_the_graph_and_the_chart(
    site: Site, lab2_report: dict[str, Any]
) -> None:
    page = _built_page(site, RESULTS_PAGE)
    source = page.read_text(encoding="utf-8")
    assert source.count('data-meshlab="app-graph"') == 1
    assert source.count('data-meshlab="share-chart"') == 1
    assert 'data-version="safe"' in source
    assert 'data-version="risky"' in source
    check = lab2_report["checks"][0]
    text = _parse(page).text
    for bucket in check["buckets"]:
        assert f"{bucket['count']}/{check['requests']}" in text
    # The page and the terminal verdict quote the same interval for the canary.
    if check["outcome"] == "pass":
        quoted = re.search(r"99\.9% anytime CI (\S+–\S+%)", check["message"])
        assert quoted, check["message"]
        assert f"{quoted.group(1)}, lies inside the band 5%–20%" in text


# ------------------------------------------------------------------------------------------
# The results page in a real browser

# $MESHLAB_CHROMIUM points at another Chromium build (or, set to a missing path, skips the test).
CHROMIUM = os.environ.get("MESHLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.access(CHROMIUM, os.X_OK)
SCREENSHOT = REPORTS / "lab-2-traffic-results.png"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(site: Site) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site.out))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            # Names other than 127.0.0.1 do not resolve: the page must work offline.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.chromium
@pytest.mark.skipif(
    not HAVE_CHROMIUM,
    reason=f"headless Chromium not found ({CHROMIUM} is not an executable; Debian: apt-get "
    "install chromium, which .ci/run does), so the results page was not rendered in a browser",
)
def test_the_results_page_renders_in_headless_chromium(served: str, tmp_path: Path) -> None:
    url = f"{served}/results/lab-2-traffic/"
    netlog = tmp_path / "netlog.json"
    done = _chromium(tmp_path / "profile", f"--log-net-log={netlog}", "--dump-dom", url)
    assert done.returncode == 0, done.stderr
    dom = done.stdout
    graph = re.search(r"<svg[^>]*data-meshlab=\"app-graph\".*?</svg>", dom, re.DOTALL)
    assert graph, f"the versioned app graph is not in the DOM:\n{dom[:2000]}"
    for node in ('data-node="client"', 'data-node="service"', 'data-node="box"'):
        assert node in graph.group(0)
    assert 'data-version="safe"' in graph.group(0)
    assert 'data-version="risky"' in graph.group(0)
    assert re.search(r"<svg[^>]*data-meshlab=\"share-chart\"", dom)
    assert "&lt;svg" not in dom  # shown as markup, not escaped into text
    # Material's JavaScript, served by the site itself, ran: it wraps tables and adds the copy
    # buttons of code blocks, which the static HTML does not have.
    assert any(mark in dom for mark in ("md-typeset__scrollwrap", "data-clipboard-target"))
    assert _page_requests(netlog, served), "the page requested nothing from the test server"

    REPORTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = _chromium(
        tmp_path / "profile", "--window-size=1280,1900", f"--screenshot={SCREENSHOT}", url
    )
    assert shot.returncode == 0, shot.stderr
    width, height = _png_size(SCREENSHOT)
    assert (width, height) == (1280, 1900)
    assert SCREENSHOT.stat().st_size > 50_000  # a rendered page, not a blank one


def _page_requests(netlog: Path, origin: str) -> list[str]:
    """Every URL the page itself requested (Chromium's own service calls are not the page's);
    all of them must be on the test server."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    requested = []
    for event in log["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") == origin or params.get("request_type") == "main frame":
            requested.append(params["url"])
    outside = [u for u in requested if not u.startswith(origin + "/")]
    assert not outside, f"the page requested resources outside the site: {outside}"
    return requested


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
