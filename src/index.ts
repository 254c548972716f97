import { run } from './main';

void run(process.argv.slice(2), process.env).then((code) => process.exit(code));
