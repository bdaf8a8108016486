"""The Prometheus text format 0.0.4, read strictly: what the e2e tests use to
check every byte of GET /metrics (55_metrics.py, 70_cluster.py)."""
import math
import re

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(AssertionError):
    pass


def parse_value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError("%s: bad value %r" % (where, s))
    return float(s)


def parse_labels(s, i, where):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        if name in labels:
            raise ParseError("%s: label %s twice" % (where, name))
        if name.startswith("__"):
            raise ParseError("%s: reserved label %s" % (where, name))
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
            if s[i] == "}":  # a trailing comma is allowed by 0.0.4
                return labels, i + 1
        elif s[i] != "}":
            raise ParseError("%s: expected , or } at %r" % (where, s[i:]))


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
            return name[:-len(suffix)]
    return name


def parse_prometheus(text):
    """Strict text format 0.0.4. Returns {family: {"type", "help", "samples":
    [(name, labels, value)]}}; raises ParseError on any deviation."""
    if not text.endswith("\n"):
        raise ParseError("output does not end with a newline")
    fams, types, seen, done = {}, {}, set(), set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line)
        if line == "":
            raise ParseError("%s: empty line" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                raise ParseError("%s: unexpected comment" % where)
            name = parts[2]
            if not NAME_RE.fullmatch(name):
                raise ParseError("%s: bad metric name" % where)
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if name in done:
                raise ParseError("%s: metadata after the family's samples ended" % where)
            if fam["samples"]:
                raise ParseError("%s: metadata after samples" % where)
            if parts[1] == "HELP":
                if fam["help"] is not None:
                    raise ParseError("%s: second HELP" % where)
                help_text = parts[3] if len(parts) > 3 else ""
                if re.search(r"\\[^\\n]", help_text.replace("\\\\", "")):
                    raise ParseError("%s: bad escape in HELP" % where)
                fam["help"] = help_text
            else:
                if fam["type"] is not None:
                    raise ParseError("%s: second TYPE" % where)
                if len(parts) != 4 or parts[3] not in TYPES:
                    raise ParseError("%s: bad TYPE" % where)
                fam["type"] = types[name] = parts[3]
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = NAME_RE.match(line)
        if not m:
            raise ParseError("%s: bad metric name" % where)
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ParseError("%s: expected one space before the value" % where)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or rest[0] == "":
            raise ParseError("%s: expected value [timestamp]" % where)
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError("%s: bad timestamp" % where)
        fam_name = family_of(name, types)
        if fam_name not in types:
            raise ParseError("%s: sample without a TYPE line" % where)
        if fam_name in done:
            raise ParseError("%s: family %s is not contiguous" % (where, fam_name))
        if current != fam_name:
            if current is not None:
                done.add(current)
            current = fam_name
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ParseError("%s: duplicate series" % where)
        seen.add(key)
        if types[fam_name] == "counter" and (value < 0 or math.isnan(value)):
            raise ParseError("%s: negative counter" % where)
        if types[fam_name] == "histogram" and name == fam_name:
            raise ParseError("%s: bare sample in a histogram family" % where)
        if name.endswith("_bucket") and types[fam_name] == "histogram" and "le" not in labels:
            raise ParseError("%s: bucket without le" % where)
        fams[fam_name]["samples"].append((name, labels, value))
    for name, fam in fams.items():
        if fam["type"] is None or fam["help"] is None:
            raise ParseError("%s: missing HELP or TYPE" % name)
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, labels, value in samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            g["buckets"].append((parse_value(labels["le"], name), value))
        elif sname == name + "_sum":
            g["sum"] = value
        else:
            g["count"] = value
    for base, g in groups.items():
        where = "%s%r" % (name, base)
        if g["sum"] is None or g["count"] is None:
            raise ParseError("%s: missing _sum or _count" % where)
        les = [le for le, _ in g["buckets"]]
        if not les or les[-1] != math.inf:
            raise ParseError("%s: no +Inf bucket last" % where)
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError("%s: le not strictly ascending" % where)
        counts = [c for _, c in g["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ParseError("%s: buckets not cumulative" % where)
        if counts[-1] != g["count"]:
            raise ParseError("%s: +Inf bucket %r != _count %r" % (where, counts[-1], g["count"]))
        if g["sum"] < 0:
            raise ParseError("%s: negative sum" % where)


def series(fams, family, sample_name=None, **labels):
    """The value of the one sample of `family` named sample_name whose labels
    are exactly `labels`; fails when there is none."""
    sample_name = sample_name or family
    want = {k: str(v) for k, v in labels.items()}
    for name, ls, value in fams[family]["samples"]:
        if name == sample_name and ls == want:
            return value
    raise AssertionError("no %s%r in /metrics" % (sample_name, want))
