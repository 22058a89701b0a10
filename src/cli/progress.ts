// Progress bars of the long commands (queue export/import, import, backup/restore, directory check): stderr, TTY only.
import cliProgress from 'cli-progress';

export interface Progress {
  /** `done` of `total` (the total may change: a new stage); `stage` names what is being done. */
  readonly tick: (done: number, total: number, stage?: string) => void;
  readonly stop: () => void;
}

const NONE: Progress = { tick: () => undefined, stop: () => undefined };

/**
 * A bar on `stream` when it is a terminal; otherwise nothing at all, so scripts, pipes, logs and tests see only the
 * command's own output (stdout stays clean either way: the bar is on stderr).
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return NONE;
  const bar = new cliProgress.SingleBar(
    { stream, format: `${label} [{bar}] {value}/{total} {stage}`, hideCursor: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    tick: (done, total, stage = '') => {
      if (!started) {
        bar.start(total, done, { stage });
        started = true;
        return;
      }
      bar.setTotal(total);
      bar.update(done, { stage });
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}
