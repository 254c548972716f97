import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupMembers } from '../process';

// Each command runs in a fresh bash that first loads the state the previous command left (all shell
// variables, exported or not, functions and the working directory) and saves it again on exit, so a
// build's commands share one shell state as in CodeBuild buildspec 0.2. A marker printed on exit tells
// where the command's output ends even when it leaves background processes holding the pipe.
const RUNNER = String.raw`exec 2>&1
__cb_state=$1 __cb_marker=$2 __cb_cmd=$3
shift 3
if [ -s "$__cb_state" ]; then . "$__cb_state"; fi
for __cb_kv in "$@"; do export "$__cb_kv"; done
set --
__cb_save() {
  local __cb_v
  {
    for __cb_v in $(compgen -v); do
      case $__cb_v in
        __cb_*|BASH*|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|DIRSTACK|PIPESTATUS|_|LINENO|RANDOM|SRANDOM|SECONDS|EPOCHSECONDS|EPOCHREALTIME|HISTCMD|OPTIND|OPTARG|COMP_*|PWD|OLDPWD|SHLVL|IFS|PS4) continue ;;
      esac
      [[ ${'$'}{!__cb_v@a} == *r* ]] && continue # readonly: cannot be restored
      declare -p "$__cb_v" 2>/dev/null
    done
    declare -f
    printf 'builtin cd -- %q\n' "$PWD"
  } >"$__cb_state"
}
trap '__cb_rc=$?; __cb_save; printf "%s\n" "$__cb_marker"; exit $__cb_rc' EXIT
eval "$__cb_cmd"
`;

export interface ShellSession {
  /** Runs one command; resolves with its exit code (or the signal that ended it). */
  run(command: string, onLine: (line: string) => void, set?: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Current value of a shell variable (exported or not) in the saved state. */
  variables(names: string[]): Promise<Record<string, string | undefined>>;
  /** Kills every process group started by this session (SIGTERM, SIGKILL after 2 s). */
  kill(): Promise<void>;
}

export function createShellSession(dir: string, cwd: string, env: Record<string, string>): ShellSession {
  const runner = join(dir, 'runner.sh');
  const state = join(dir, 'shell-state.sh');
  writeFileSync(runner, RUNNER);
  writeFileSync(state, '');
  const groups = new Set<number>();

  const run: ShellSession['run'] = (command, onLine, set = {}) =>
    new Promise((resolve, reject) => {
      const marker = `__CODEBUILD_FAKE_DONE_${randomUUID()}__`;
      // Once a state exists it holds the whole environment, so variables a command unset stay unset.
      const startEnv = statSync(state).size > 0 ? {} : env;
      const args = [runner, state, marker, command, ...Object.entries(set).map(([k, v]) => `${k}=${v}`)];
      const child = spawn('bash', args, { cwd, env: startEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid !== undefined) groups.add(child.pid);
      let partial = '';
      let markerSeen = false;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let settled = false;
      const finish = () => {
        if (settled || !exit) return;
        settled = true;
        if (partial) onLine(partial);
        partial = '';
        resolve(exit);
      };
      const onData = (chunk: Buffer) => {
        if (settled) return onLine(chunk.toString('utf8').replace(/\n$/, ''));
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line.endsWith(marker)) {
            markerSeen = true;
            const before = line.slice(0, -marker.length);
            if (before) onLine(before);
          } else {
            onLine(line);
          }
        }
        if (markerSeen) finish();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        // Killed commands and ones that closed stdout never print the marker.
        if (markerSeen || signal) finish();
        else setTimeout(finish, 1000).unref();
      });
      child.on('close', finish);
    });

  const variables: ShellSession['variables'] = async (names) => {
    const script = `. "$1"; shift; for n in "$@"; do if [[ -v $n ]]; then printf '%s=%s\\0' "$n" "\${!n}"; fi; done`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', script, 'bash', state, ...names], { cwd, env, stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
      child.on('error', reject);
      child.on('close', () => resolve(text));
    });
    const found = new Map(out.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    return Object.fromEntries(names.map((n) => [n, found.get(n)]));
  };

  const kill: ShellSession['kill'] = async () => {
    const signal = (sig: NodeJS.Signals) => {
      for (const pgid of groups) {
        try {
          process.kill(-pgid, sig);
        } catch {
          groups.delete(pgid); // group already gone
        }
      }
    };
    signal('SIGTERM');
    for (let waited = 0; waited < 2000 && [...groups].some(groupAlive); waited += 25) {
      await new Promise((r) => setTimeout(r, 25));
    }
    signal('SIGKILL');
    groups.clear();
  };

  return { run, variables, kill };
}

/** Whether a process group still has a live (non-zombie) member; orphans may stay zombies a while in containers. */
function groupAlive(pgid: number): boolean {
  if (existsSync('/proc/self/stat')) return groupMembers(pgid).length > 0;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
