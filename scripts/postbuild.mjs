// Makes the built command entry points executable (npm links them as `quail` and `sendmail`).
import { chmodSync, existsSync } from 'node:fs';
for (const f of ['dist/cli/main.js', 'dist/cli/sendmail.js']) if (existsSync(f)) chmodSync(f, 0o755);
