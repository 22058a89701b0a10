// qmail's error_str(): the exact words qmail puts after "Unable to ...: " for each errno code.

const TEXT: Readonly<Record<string, string>> = {
  EINTR: 'interrupted system call',
  ENOMEM: 'out of memory',
  ENOENT: 'file does not exist',
  ETXTBSY: 'text busy',
  EIO: 'input/output error',
  EEXIST: 'file already exists',
  ETIMEDOUT: 'timed out',
  EINPROGRESS: 'operation in progress',
  EAGAIN: 'temporary failure',
  EWOULDBLOCK: 'input/output would block',
  EPIPE: 'broken pipe',
  EPERM: 'permission denied',
  EACCES: 'access denied',
  ENXIO: 'device not configured',
  EPROTO: 'protocol error',
  EISDIR: 'is a directory',
  ESRCH: 'no such process',
  E2BIG: 'argument list too long',
  ENOEXEC: 'exec format error',
  EBADF: 'file descriptor not open',
  ECHILD: 'no child processes',
  EDEADLK: 'operation would cause deadlock',
  EFAULT: 'bad address',
  ENOTBLK: 'not a block device',
  EBUSY: 'device busy',
  EXDEV: 'cross-device link',
  ENODEV: 'device does not support operation',
  ENOTDIR: 'not a directory',
  EINVAL: 'invalid argument',
  ENFILE: 'system cannot open more files',
  EMFILE: 'process cannot open more files',
  ENOTTY: 'not a tty',
  EFBIG: 'file too big',
  ENOSPC: 'out of disk space',
  ESPIPE: 'unseekable descriptor',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOTEMPTY: 'directory not empty',
  EDQUOT: 'disk quota exceeded',
  ESTALE: 'stale NFS file handle',
  ENOSYS: 'system call not available',
};

/** The errno code of a Node error (`ENOENT`...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** qmail's text for an error (`file does not exist`); unknown codes get `unknown error`. */
export function errorStr(err: unknown): string {
  const code = errnoCode(err);
  return (code !== undefined ? TEXT[code] : undefined) ?? 'unknown error';
}

const TEMP = new Set([
  'EINTR',
  'ENOMEM',
  'ETXTBSY',
  'EIO',
  'ETIMEDOUT',
  'EWOULDBLOCK',
  'EAGAIN',
  'ENFILE',
  'EMFILE',
  'EFBIG',
  'ENOSPC',
  'EDQUOT',
  'ESTALE',
  'EBUSY',
]);

/** qmail's error_temp(): errors that may go away by themselves. */
export function isTemporaryErrno(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && TEMP.has(code);
}
