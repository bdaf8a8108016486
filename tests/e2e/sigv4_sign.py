#!/usr/bin/python3
"""SigV4 signing for the e2e tests with a signer nobody here wrote: botocore's
SigV4Auth (header form) and SigV4QueryAuth (presigned URL form), as bundled
by Debian's awscli package.

Run it with Debian's interpreter, /usr/bin/python3: awscli's botocore is only
importable there, and only after `import awscli.clidriver` (which aliases
`botocore`). scripts/install-deps.sh installs awscli. Exit code 3 when the
signer cannot be imported, 2 on a usage error.

One request (secret on the command line: for manual use only):
  sigv4_sign.py --method GET --url http://127.0.0.1:8080/prod/pets/1 \\
      --access-key AKIA... --secret S [--header 'Name: value']... [--body TEXT] \\
      [--region us-east-1] [--service execute-api] [--timestamp 20240101T000000Z|EPOCH] \\
      [--presign [--expires 300]]

Many requests (what the tests use; secrets travel on stdin, not in argv):
  sigv4_sign.py --batch  <  [{"method", "url", "access_key", "secret",
                              "headers": {..}, "body", "region", "service",
                              "timestamp", "presign", "expires"}, ...]

Output (stdout, JSON; a list of these in --batch mode):
  {"url": URL to send to (the presigned URL, or the URL unchanged),
   "headers": {name: value} to send: the given headers plus the signer's
              (Authorization and X-Amz-Date in the header form)}
"""
import argparse
import datetime
import json
import sys
import types

try:
    import awscli.clidriver  # noqa: F401  (makes awscli's bundled botocore importable)
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError as e:
    sys.stderr.write("sigv4_sign.py: cannot import awscli's botocore with %s (%s); "
                     "install Debian's awscli (scripts/install-deps.sh) and run this "
                     "script with /usr/bin/python3\n" % (sys.executable, e))
    sys.exit(3)

# The signer must be Debian's awscli's bundled botocore, not some other copy
# (a pip-installed botocore on another interpreter would also import).
DEBIAN_BOTOCORE = "/usr/lib/python3/dist-packages/awscli/botocore/"
if not botocore.auth.__file__.startswith(DEBIAN_BOTOCORE):
    sys.stderr.write("sigv4_sign.py: botocore comes from %s, not from Debian's awscli (%s); "
                     "run this script with /usr/bin/python3\n"
                     % (botocore.auth.__file__, DEBIAN_BOTOCORE))
    sys.exit(3)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # botocore.auth.SIGV4_TIMESTAMP


def parse_timestamp(ts):
    """'20240101T000000Z' or seconds since the epoch -> naive UTC datetime."""
    if ts is None or ts == "":
        return None
    if isinstance(ts, (int, float)) or str(ts).replace(".", "", 1).isdigit():
        utc = datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc)
        return utc.replace(tzinfo=None)
    return datetime.datetime.strptime(str(ts), TIMESTAMP_FORMAT)


class _Clock:
    """Stands in for the `datetime` module inside botocore.auth so that
    add_auth() signs at a fixed time instead of utcnow()."""

    def __init__(self, fixed):
        fixed_dt = fixed

        class FixedDatetime(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return fixed_dt

        self.datetime = FixedDatetime


def sign(req):
    method = req.get("method", "GET").upper()
    url = req["url"]
    headers = dict(req.get("headers") or {})
    body = req.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    creds = botocore.credentials.Credentials(req["access_key"], req["secret"])
    region = req.get("region") or "us-east-1"
    service = req.get("service") or "execute-api"
    if req.get("presign"):
        signer = botocore.auth.SigV4QueryAuth(creds, service, region,
                                              expires=int(req.get("expires") or 300))
    else:
        signer = botocore.auth.SigV4Auth(creds, service, region)
    aws_req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers, data=body)
    fixed = parse_timestamp(req.get("timestamp"))
    real_datetime = botocore.auth.datetime
    if fixed is not None:
        botocore.auth.datetime = types.SimpleNamespace(datetime=_Clock(fixed).datetime)
    try:
        signer.add_auth(aws_req)
    finally:
        botocore.auth.datetime = real_datetime
    return {"url": aws_req.url, "headers": {k: v for k, v in aws_req.headers.items()}}


def main():
    ap = argparse.ArgumentParser(description="SigV4-sign a request with awscli's botocore")
    ap.add_argument("--batch", action="store_true", help="JSON list of requests on stdin")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--url")
    ap.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    ap.add_argument("--body", default="")
    ap.add_argument("--access-key")
    ap.add_argument("--secret")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--service", default="execute-api")
    ap.add_argument("--timestamp", default=None)
    ap.add_argument("--presign", action="store_true")
    ap.add_argument("--expires", type=int, default=300)
    args = ap.parse_args()
    if args.batch:
        reqs = json.load(sys.stdin)
        if not isinstance(reqs, list):
            ap.error("--batch expects a JSON list on stdin")
        json.dump([sign(r) for r in reqs], sys.stdout)
    else:
        if not (args.url and args.access_key and args.secret is not None):
            ap.error("--url, --access-key and --secret are required")
        headers = {}
        for h in args.header:
            k, sep, v = h.partition(":")
            if not sep:
                ap.error("--header must be 'Name: value'")
            headers[k.strip()] = v.strip()
        json.dump(sign({"method": args.method, "url": args.url, "headers": headers,
                        "body": args.body, "access_key": args.access_key,
                        "secret": args.secret, "region": args.region,
                        "service": args.service, "timestamp": args.timestamp,
                        "presign": args.presign, "expires": args.expires}), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
