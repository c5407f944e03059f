"""Family headers and label escaping in both exposition formats."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.render.text import EOF_LINE, FamilyHeader, format_labels

HELP = 'Line one \\ backslash "quoted"\nline two, Größe'


def test_text_header_escapes_backslash_and_newline_only() -> None:
    header = FamilyHeader("kubevirt_vss_x", "gauge", HELP).text()
    help_line = '# HELP kubevirt_vss_x Line one \\\\ backslash "quoted"\\nline two, Größe\n'
    assert header == (help_line + "# TYPE kubevirt_vss_x gauge\n").encode()
    (family,) = parse_text(header.decode() + "kubevirt_vss_x 1\n")
    assert family.documentation == HELP


def test_openmetrics_header_escapes_quotes_too_and_names_counters_and_infos_by_family() -> None:
    counter = FamilyHeader("kubevirt_vss_x_total", "counter", HELP).openmetrics()
    assert counter.startswith(b'# HELP kubevirt_vss_x Line one \\\\ backslash \\"quoted\\"\\nline two')
    assert counter.endswith(b"# TYPE kubevirt_vss_x counter\n")
    info = FamilyHeader("kubevirt_vss_y_info", "gauge", "Info.").openmetrics()
    assert info == b"# HELP kubevirt_vss_y Info.\n# TYPE kubevirt_vss_y info\n"
    body = counter + b"kubevirt_vss_x_total 1.0\n" + info + b"kubevirt_vss_y_info 1.0\n" + EOF_LINE
    families = {f.name: f for f in parse_openmetrics(body.decode())}
    assert families["kubevirt_vss_x"].documentation == HELP and families["kubevirt_vss_y"].type == "info"


def test_format_labels() -> None:
    assert format_labels((), ()) == ""
    assert format_labels(("a", "b"), ('x"y', "1\\2\n")) == '{a="x\\"y",b="1\\\\2\\n"}'
