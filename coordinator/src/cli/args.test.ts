import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { numberOption, parseRadfedArgs } from './args.js';

describe("radfed's command line", () => {
  it('finds the command wherever the global options are', () => {
    for (const argv of [
      ['--coordinator', 'h:1', 'rounds', 'list', 'F', '--json'],
      ['rounds', '--coordinator', 'h:1', 'list', '--json', 'F'],
      ['--json', 'rounds', 'list', 'F', '--coordinator=h:1'],
    ]) {
      expect(parseRadfedArgs(argv)).toMatchObject({
        kind: 'operator',
        command: 'rounds list',
        args: ['F'],
        values: { coordinator: 'h:1', json: true },
      });
    }
  });

  it('hands the audit commands everything but the word audit, options included', () => {
    expect(parseRadfedArgs(['--coordinator', 'X', 'audit', 'export', 'FED', '--out', 'F'])).toEqual({
      kind: 'audit',
      argv: ['--coordinator', 'X', 'export', 'FED', '--out', 'F'],
    });
  });

  it('refuses an option the command does not take, and an unknown command', () => {
    expect(() => parseRadfedArgs(['rounds', 'list', 'F', '--out', 'x'])).toThrow(
      /--out is not an option of "radfed rounds list" \(it belongs to the audit commands\)/,
    );
    expect(() => parseRadfedArgs(['rounds', 'frobnicate'])).toThrow(UsageError);
    expect(() => parseRadfedArgs(['rounds', 'list', '--nope'])).toThrow(UsageError);
  });

  it('parses whole and decimal numbers, naming the option on a bad one', () => {
    expect(numberOption('learning-rate', '0.0005')).toBe(0.0005);
    expect(numberOption('count', '3', true)).toBe(3);
    expect(numberOption('count', undefined, true)).toBeUndefined();
    expect(() => numberOption('count', '2.5', true)).toThrow('--count must be a whole number, got "2.5".');
    expect(() => numberOption('learning-rate', 'fast')).toThrow('--learning-rate must be a number');
  });

  it('hands simulate its own options, wherever the global ones are', () => {
    expect(parseRadfedArgs(['simulate', '--sites', '3', '--seed', '2'])).toEqual({
      kind: 'simulate',
      argv: ['--sites', '3', '--seed', '2'],
    });
    expect(parseRadfedArgs(['--json', 'simulate', '--sites', '3'])).toEqual({
      kind: 'simulate',
      argv: ['--json', '--sites', '3'],
    });
  });
});
