// Lint configuration: type-aware rules on, so a forgotten promise in a delivery path is an error; and the
// component import rules of docs/ARCHITECTURE.md, so the picture of the house cannot drift from the code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Which component (folder under src/) may import which (docs/ARCHITECTURE.md, "Which component may import
 * which"). Tests may import what they exercise; bench and conformance are tools that drive everything.
 */
const MAY_IMPORT = {
  core: [],
  cdb: [],
  lineio: [],
  maildir: [],
  dovecot: [],
  throttle: ['core'],
  tcpserver: ['throttle'],
  msgauth: ['core'],
  control: ['core'],
  queue: ['core'],
  queues: ['core', 'control'],
  route: ['core', 'control'],
  users: ['core', 'cdb', 'control'],
  bounce: ['core', 'control'],
  remote: ['core', 'control'],
  pop3d: ['core', 'lineio', 'maildir', 'tcpserver', 'throttle'],
  vdeliver: ['core', 'maildir'],
  smtpd: ['core', 'cdb', 'control', 'lineio', 'queue', 'queues', 'tcpserver', 'throttle'],
  inject: ['core', 'control', 'queue', 'queues'],
  toolbox: ['core', 'queue'],
  filter: ['core', 'control', 'queue', 'queues'],
  directory: ['core', 'cdb', 'control', 'maildir', 'users', 'vdeliver'],
  local: ['core', 'maildir', 'vdeliver'],
  scheduler: ['core', 'bounce', 'control', 'local', 'queue', 'queues', 'remote', 'route', 'users'],
  held: ['core', 'bounce', 'control', 'queue', 'remote', 'tcpserver', 'throttle', 'users'],
  // issue 19: roles and the web admin (access decides; web serves HTTP and knows access only by its types)
  access: ['core', 'directory', 'lists'],
  web: ['access', 'throttle'],
  // mailing lists (issue 19 section 3)
  lists: ['core', 'control', 'directory', 'inject', 'queue'],
  offices: ['core', 'directory', 'maildir'],
  start: [
    'access',
    'core',
    'control',
    'directory',
    'filter',
    'held',
    'local',
    'msgauth',
    'offices',
    'pop3d',
    'queue',
    'queues',
    'remote',
    'scheduler',
    'smtpd',
    'tcpserver',
    'throttle',
    'users',
    'vdeliver',
    'web',
    // mailing lists: the supervisor's list writer (lists-link.ts)
    'lists',
  ],
  cli: [
    // tcpserver: main.ts checks the limit on open files with the listeners' own reading, before loading the rest
    'tcpserver',
    'access',
    'bounce',
    'core',
    'held',
    'control',
    'directory',
    'dovecot',
    'filter',
    'inject',
    'local',
    'maildir',
    'msgauth',
    'queue',
    'queues',
    'remote',
    'route',
    'smtpd',
    'start',
    'throttle',
    'toolbox',
    'users',
    'vdeliver',
    // mailing lists: quail list, list-post, list-manage
    'lists',
    // offices: quail office export
    'offices',
  ],
};
const TOOLS = ['bench', 'conformance'];
const COMPONENTS = [...Object.keys(MAY_IMPORT), ...TOOLS];

const boundaries = Object.entries(MAY_IMPORT).map(([component, allowed]) => ({
  files: [`src/${component}/**/*.ts`],
  ignores: ['**/*.test.ts', '**/testkit.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: COMPONENTS.filter((c) => c !== component && !allowed.includes(c)).map((c) => ({
          group: [`../${c}/**`, `../../${c}/**`, `../../../${c}/**`],
          message: `${component} may not import ${c} (docs/ARCHITECTURE.md: ${component} imports ${allowed.join(', ') || 'nothing'}); change the table there and in eslint.config.js only with a reason`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'var/**', 'scripts/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...boundaries,
);
