import { Command, CommanderError } from 'commander';
import { describeFsError } from '../masks/fsErrors';
import { InputError } from '../masks/inputError';
import { ModelRequestError } from '../modelServer/modelClient';
import { BatchIncomplete, UsageError } from './cliContext';
import { registerBenchCommand } from './commands/bench';
import { registerClickCommand } from './commands/click';
import { registerDataCommands } from './commands/data';
import { registerFormatCommands } from './commands/formats';
import { registerModelCommands } from './commands/model';

const program = new Command();
program
  .name('maskloop')
  .description('Model-in-the-loop image segmentation: pre-label, fine-tune, evaluate, simulate, benchmark.')
  .exitOverride();

registerModelCommands(program);
registerBenchCommand(program);
registerClickCommand(program);
registerFormatCommands(program);
registerDataCommands(program);

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof BatchIncomplete) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 2;
    }
    if (err instanceof InputError || (err instanceof ModelRequestError && err.kind !== 'internal')) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 1;
    }
    const fsMessage = describeFsError(err);
    if (fsMessage) {
      process.stderr.write(`maskloop: ${fsMessage}\n`);
      return 1;
    }
    // A bug, not the person's input: one line, the stack trace only when asked for.
    const message = err instanceof Error ? err.message : String(err);
    if (process.env.MASKLOOP_DEBUG)
      process.stderr.write(`maskloop: internal error: ${message}\n${err instanceof Error ? (err.stack ?? '') : ''}\n`);
    else
      process.stderr.write(
        `maskloop: internal error: ${message.split('\n')[0].replace(/^\w*Error: /, '')} (a bug: run again with MASKLOOP_DEBUG=1 for the stack trace, and report it)\n`,
      );
    return 1;
  }
}

void main().then((code) => {
  process.exitCode = code;
});
