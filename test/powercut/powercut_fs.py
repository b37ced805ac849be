#!/usr/bin/python3
"""powercut-fs: a passthrough FUSE filesystem that forgets, on a power cut, what was not durable.

Every operation is passed through to a backing folder, so the program above it sees an ordinary
filesystem. Beside that the helper keeps a model of what a disk with a volatile write cache
would still hold after the power went away:

  * a file's data is durable once the file is fsynced (fsync or fdatasync; or written through a
    descriptor opened O_SYNC / O_DSYNC): until then a write, a truncate or an extension lives in
    the cache only;
  * a directory entry (create, mkdir, link, symlink, rename, unlink, rmdir) is durable once that
    directory is fsynced. A new folder therefore exists after the cut only when its entry was
    synced in its parent, and so on up to the mount's root. A rename is two entries: the new name
    becomes durable with its directory, the old name goes away with its own;
  * everything present at mount time is durable (the box booted on it).

Files are tracked as nodes, not names, so a file written, synced and then renamed keeps its
synced data under whichever names are durable. This is the strict POSIX reading; ext4 in its
default mode is kinder (an fsync commits the whole journal), so what this finds is a place where
the program relies on a particular filesystem, not on what POSIX promises.

The test drives it over a Unix socket, one JSON line per command:

  freeze   the instant of the cut: every operation from now on blocks and never completes.
           The caller then SIGKILLs the processes above the mount.
  cut      the blocked operations fail with EIO (their processes are already dying), the backing
           folder is rewritten to exactly the durable state, the mount goes away and the helper
           exits. The answer counts what was thrown away.
  unmount  an orderly shutdown: whatever is there now is kept as it is.
  stats    counters: operations, fsyncs, bytes written.

Usage: powercut_fs.py BACKING MOUNTPOINT CONTROL_SOCKET
It prints "ready" on stdout once the kernel has mounted it.
"""

import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations


class File:
    __slots__ = ('durable', 'ranges', 'trunc_low', 'mode')

    def __init__(self, mode, durable=None):
        # Content as of the last sync (None: never synced, so empty after a cut).
        self.durable = durable
        # Byte ranges written since then, and the lowest size a truncate set since then.
        self.ranges = []
        self.trunc_low = None
        self.mode = mode

    def wrote(self, start, end):
        if end <= start:
            return
        if self.ranges and self.ranges[-1][1] == start:
            # Appends (logs, messages written in chunks) stay one range.
            self.ranges[-1] = (self.ranges[-1][0], end)
        else:
            self.ranges.append((start, end))

    def truncated(self, size):
        self.trunc_low = size if self.trunc_low is None else min(self.trunc_low, size)

    def dirty(self):
        return bool(self.ranges) or self.trunc_low is not None

    def sync(self, fd):
        """The file's current content becomes its durable content (only what changed is read)."""
        size = os.fstat(fd).st_size
        d = self.durable if self.durable is not None else bytearray()
        todo = list(self.ranges)
        if self.trunc_low is not None:
            todo.append((self.trunc_low, size))
        if len(d) < size and not todo:
            todo.append((len(d), size))
        for a, b in todo:
            a, b = min(a, size), min(b, size)
            if b <= a:
                continue
            data = os.pread(fd, b - a, a)
            if len(d) < a:
                d.extend(bytes(a - len(d)))
            d[a:a + len(data)] = data
        if len(d) > size:
            del d[size:]
        elif len(d) < size:
            d.extend(os.pread(fd, size - len(d), len(d)))
        self.durable = d
        self.ranges = []
        self.trunc_low = None


class Dir:
    __slots__ = ('live', 'durable', 'mode')

    def __init__(self, mode, entries=None):
        self.live = dict(entries or {})
        # Entries as of the last fsync of this directory. A new directory has none durable.
        self.durable = dict(entries or {})
        self.mode = mode


class Link:
    __slots__ = ('target',)

    def __init__(self, target):
        self.target = target


def load(path, seen):
    """The tree present at mount time: all of it durable."""
    st = os.lstat(path)
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return seen[key]
    if stat.S_ISDIR(st.st_mode):
        entries = {n: load(os.path.join(path, n), seen) for n in os.listdir(path)}
        node = Dir(stat.S_IMODE(st.st_mode), entries)
    elif stat.S_ISLNK(st.st_mode):
        node = Link(os.readlink(path))
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as f:
            node = File(stat.S_IMODE(st.st_mode), bytearray(f.read()))
    else:
        raise SystemExit(f'powercut-fs: {path}: only files, folders and symlinks are modelled')
    seen[key] = node
    return node


SYNC_FLAGS = os.O_SYNC | os.O_DSYNC


def backing_flags(flags):
    """How the backing file is opened: always readable (a sync reads back what was written),
    never O_APPEND (the kernel gives every write its offset), O_TRUNC as asked, no O_SYNC
    (durability is the model's business, not the backing disk's)."""
    return os.O_RDWR | (flags & os.O_TRUNC) | os.O_CLOEXEC


class PowerCutFs(Operations):
    use_ns = True
    # With hard_remove, an open file that was unlinked (or renamed over) has no path: libfuse2
    # then passes NULL, and without this flag answers ENOENT to its reads, writes and fsyncs,
    # which a real disk would serve. Every file operation here works from the descriptor.
    flag_nullpath_ok = True

    def __init__(self, backing, mountpoint):
        self.backing = os.path.realpath(backing)
        self.mountpoint = mountpoint
        self.root = load(self.backing, {})
        if not isinstance(self.root, Dir):
            raise SystemExit('powercut-fs: the backing path must be a folder')
        self.mutex = threading.RLock()
        self.gate = threading.Condition()
        self.state = 'live'  # live | frozen | dead
        self.fhs = {}  # backing fd -> (node, writes are synchronous)
        self.counts = {'ops': 0, 'writes': 0, 'bytesWritten': 0, 'fsyncs': 0, 'fsyncdirs': 0}

    # Every operation passes the gate: after `freeze` none completes, after `cut` all fail.
    def __call__(self, op, *args):
        if op in ('init', 'destroy'):
            return getattr(self, op)(*args)
        while True:
            with self.gate:
                while self.state == 'frozen':
                    self.gate.wait()
                if self.state == 'dead':
                    raise FuseOSError(errno.EIO)
            with self.mutex:
                # Frozen while this one waited for the mutex: it comes after the cut, so it
                # waits like the others (an EIO now would reach a process still alive).
                if self.state == 'frozen':
                    continue
                if self.state != 'live':
                    raise FuseOSError(errno.EIO)
                self.counts['ops'] += 1
                return getattr(self, op)(*args)

    def init(self, path):
        print('ready', flush=True)

    # --- the model's view of names -------------------------------------------------------

    def b(self, path):
        return self.backing + path

    def node(self, path):
        n = self.root
        for part in path.split('/'):
            if not part:
                continue
            if not isinstance(n, Dir) or part not in n.live:
                raise FuseOSError(errno.ENOENT)
            n = n.live[part]
        return n

    def parent(self, path):
        head, name = os.path.split(path)
        d = self.node(head)
        if not isinstance(d, Dir):
            raise FuseOSError(errno.ENOTDIR)
        return d, name

    # --- metadata --------------------------------------------------------------------------

    def getattr(self, path, fh=None):
        try:
            st = os.fstat(fh.fh) if fh else os.lstat(self.b(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        attrs = {k: getattr(st, k) for k in ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_blocks', 'st_ino')}
        # use_ns: fusepy takes the times in nanoseconds.
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def access(self, path, amode):
        if not os.access(self.b(path), amode):
            raise FuseOSError(errno.EACCES)

    def readlink(self, path):
        return os.readlink(self.b(path))

    def statfs(self, path):
        sv = os.statvfs(self.backing)
        return {k: getattr(sv, k) for k in (
            'f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def chmod(self, path, mode):
        os.chmod(self.b(path), mode)
        n = self.node(path)
        if not isinstance(n, Link):
            n.mode = stat.S_IMODE(mode)

    def chown(self, path, uid, gid):
        os.lchown(self.b(path), uid, gid)

    def utimens(self, path, times=None):
        if times is None:
            os.utime(self.b(path), follow_symlinks=False)
        else:
            os.utime(self.b(path), ns=times, follow_symlinks=False)

    # No extended attributes: the kernel then stops asking (it asks at every write otherwise).
    getxattr = None
    listxattr = None
    setxattr = None
    removexattr = None

    # --- names -----------------------------------------------------------------------------

    def mkdir(self, path, mode):
        d, name = self.parent(path)
        os.mkdir(self.b(path), mode)
        d.live[name] = Dir(stat.S_IMODE(os.stat(self.b(path)).st_mode))

    def rmdir(self, path):
        d, name = self.parent(path)
        os.rmdir(self.b(path))
        d.live.pop(name, None)

    def unlink(self, path):
        d, name = self.parent(path)
        os.unlink(self.b(path))
        d.live.pop(name, None)

    def rename(self, old, new):
        od, oname = self.parent(old)
        nd, nname = self.parent(new)
        n = self.node(old)
        os.rename(self.b(old), self.b(new))
        del od.live[oname]
        nd.live[nname] = n

    def link(self, target, source):
        d, name = self.parent(target)
        n = self.node(source)
        os.link(self.b(source), self.b(target))
        d.live[name] = n

    def symlink(self, target, source):
        d, name = self.parent(target)
        os.symlink(source, self.b(target))
        d.live[name] = Link(source)

    def mknod(self, path, mode, dev):
        raise FuseOSError(errno.EPERM)

    def readdir(self, path, fh):
        n = self.node(path)
        if not isinstance(n, Dir):
            raise FuseOSError(errno.ENOTDIR)
        return ['.', '..', *n.live.keys()]

    def fsyncdir(self, path, datasync, fh):
        if path is None:
            return  # a removed folder: nothing of it is left to make durable
        n = self.node(path)
        if isinstance(n, Dir):
            n.durable = dict(n.live)
            self.counts['fsyncdirs'] += 1

    # --- data ------------------------------------------------------------------------------

    def create(self, path, mode, fi):
        d, name = self.parent(path)
        fd = os.open(self.b(path), backing_flags(fi.flags) | os.O_CREAT | (fi.flags & os.O_EXCL), mode)
        n = d.live.get(name)
        if not isinstance(n, File):
            n = File(stat.S_IMODE(os.fstat(fd).st_mode))
            d.live[name] = n
        elif fi.flags & os.O_TRUNC:
            n.truncated(0)
        self.fhs[fd] = (n, bool(fi.flags & SYNC_FLAGS))
        fi.fh = fd
        return 0

    def open(self, path, fi):
        n = self.node(path)
        if not isinstance(n, File):
            raise FuseOSError(errno.EISDIR)
        fd = os.open(self.b(path), backing_flags(fi.flags))
        if fi.flags & os.O_TRUNC:
            n.truncated(0)
        self.fhs[fd] = (n, bool(fi.flags & SYNC_FLAGS))
        fi.fh = fd
        return 0

    def read(self, path, size, offset, fi):
        return os.pread(fi.fh, size, offset)

    def write(self, path, data, offset, fi):
        n, synchronous = self.fhs[fi.fh]
        written = os.pwrite(fi.fh, data, offset)
        n.wrote(offset, offset + written)
        self.counts['writes'] += 1
        self.counts['bytesWritten'] += written
        if synchronous:
            n.sync(fi.fh)
        return written

    def truncate(self, path, length, fh=None):
        if fh is not None:
            n = self.fhs[fh.fh][0]
            os.ftruncate(fh.fh, length)
        else:
            n = self.node(path)
            os.truncate(self.b(path), length)
        if isinstance(n, File):
            n.truncated(length)

    def fsync(self, path, datasync, fi):
        n = self.fhs[fi.fh][0]
        n.sync(fi.fh)
        self.counts['fsyncs'] += 1

    def flush(self, path, fi):
        return 0

    def release(self, path, fi):
        self.fhs.pop(fi.fh, None)
        os.close(fi.fh)

    # --- the cut ---------------------------------------------------------------------------

    def freeze(self):
        with self.gate:
            if self.state == 'live':
                self.state = 'frozen'
        # Wait out an operation in flight: it happened before the cut.
        with self.mutex:
            pass

    def kill_gate(self):
        with self.gate:
            self.state = 'dead'
            self.gate.notify_all()

    def durable_tree(self):
        """Rewrites the backing folder to the durable state; returns what was thrown away."""
        report = {'filesRolledBack': 0, 'bytesLost': 0, 'entriesLost': 0, 'entriesRevived': 0, 'cycles': 0}
        out = self.backing + '.cut'
        shutil.rmtree(out, ignore_errors=True)
        written = {}
        placed = set()

        def count(d):
            report['entriesLost'] += sum(1 for k, v in d.live.items() if d.durable.get(k) is not v)
            report['entriesRevived'] += sum(1 for k, v in d.durable.items() if d.live.get(k) is not v)

        def walk_live(d, seen):
            # Every directory reachable now, for the entries that the cut drops.
            if id(d) in seen:
                return
            seen.add(id(d))
            count(d)
            for v in d.live.values():
                if isinstance(v, Dir):
                    walk_live(v, seen)
                elif isinstance(v, File) and id(v) not in seen:
                    seen.add(id(v))
                    if v.dirty():
                        report['filesRolledBack'] += 1
                        report['bytesLost'] += sum(b - a for a, b in v.ranges)

        walk_live(self.root, set())

        def build(d, path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, d.mode)
            for name, n in d.durable.items():
                p = os.path.join(path, name)
                if isinstance(n, Dir):
                    if id(n) in placed:
                        report['cycles'] += 1  # a folder durable under two names: keep the first
                        continue
                    placed.add(id(n))
                    os.mkdir(p, 0o700)
                    build(n, p)
                elif isinstance(n, Link):
                    os.symlink(n.target, p)
                elif id(n) in written:
                    os.link(written[id(n)], p)
                else:
                    with open(p, 'wb') as f:
                        f.write(n.durable or b'')
                    os.chmod(p, n.mode)
                    written[id(n)] = p

        placed.add(id(self.root))
        build(self.root, out)
        old = self.backing + '.old'
        shutil.rmtree(old, ignore_errors=True)
        os.rename(self.backing, old)
        os.rename(out, self.backing)
        shutil.rmtree(old, ignore_errors=True)
        return report

    def unmount(self):
        subprocess.run(['umount', '-l', self.mountpoint], check=False)


def serve(fs, path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)

    def answer(conn):
        with conn, conn.makefile('rw') as f:
            for line in f:
                cmd = line.strip()
                try:
                    if cmd == 'freeze':
                        fs.freeze()
                        reply = {'ok': True}
                    elif cmd == 'cut':
                        fs.freeze()
                        fs.kill_gate()
                        with fs.mutex:
                            for fd in list(fs.fhs):
                                os.close(fd)
                            fs.fhs.clear()
                            report = fs.durable_tree()
                        reply = {'ok': True, **report, **fs.counts}
                        f.write(json.dumps(reply) + '\n')
                        f.flush()
                        fs.unmount()
                        return
                    elif cmd == 'unmount':
                        fs.freeze()
                        fs.kill_gate()
                        reply = {'ok': True, **fs.counts}
                        f.write(json.dumps(reply) + '\n')
                        f.flush()
                        fs.unmount()
                        return
                    elif cmd == 'stats':
                        with fs.mutex:
                            reply = {'ok': True, 'state': fs.state, **fs.counts}
                    else:
                        reply = {'ok': False, 'error': f'unknown command {cmd!r}'}
                except Exception as e:  # the test must see why, not a hang
                    reply = {'ok': False, 'error': repr(e)}
                f.write(json.dumps(reply) + '\n')
                f.flush()

    def loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def main():
    if len(sys.argv) != 4:
        sys.exit('usage: powercut_fs.py BACKING MOUNTPOINT CONTROL_SOCKET')
    backing, mountpoint, control = sys.argv[1:]
    fs = PowerCutFs(backing, mountpoint)
    serve(fs, control)
    # hard_remove: an unlinked open file really goes (its descriptor keeps it, as on a disk).
    # big_writes/max_write: writes arrive whole up to 128 KiB, not in 4 KiB pieces.
    FUSE(fs, mountpoint, raw_fi=True, foreground=True, nothreads=False, hard_remove=True,
         big_writes=True, max_write=131072, fsname='powercut', subtype='powercut', default_permissions=True)


if __name__ == '__main__':
    main()
