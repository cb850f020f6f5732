"""What the forward audit scripts (driver.py, udp.py, host_audit.py) share: where netkit-lab
is, the lab tag's form, and one run per work directory."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The lab binary: DFW_LAB, else the repository's release build.
LAB = os.environ.get('DFW_LAB', os.path.join(ROOT, 'target', 'release', 'netkit-lab'))
# netkit: the repository's release build unless a run names another.
NETKIT = os.path.join(ROOT, 'target', 'release', 'netkit')


def check_tag(tag, prog):
    """Exits unless `tag` is a lab tag netkit-lab takes: 1-16 of [A-Za-z0-9_-]."""
    if not (0 < len(tag) <= 16 and all(c.isalnum() or c in '_-' for c in tag)):
        sys.exit(f'{prog}: {tag}: a lab tag is 1-16 of [A-Za-z0-9_-]')


def claim(d):
    """One run per work directory: refuse a tag a live run already holds."""
    pidfile = os.path.join(d, 'pid')
    try:
        other = int(open(pidfile).read().strip() or 0)
        if other and other != os.getpid() and os.path.exists(f'/proc/{other}'):
            sys.exit(f'{d}: run {other} uses this tag; give another with --tag')
    except (OSError, ValueError):
        pass
    open(pidfile, 'w').write(str(os.getpid()))
