import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { dashboardCommand } from './cli.js';

describe('dashboardCommand', () => {
  it('claims `dashboard` and `audit dashboard FILE` wherever the options stand', () => {
    expect(dashboardCommand(['--coordinator', 'h:1', 'dashboard', '--port', '0'])).toMatchObject({
      mode: 'live',
      values: { coordinator: 'h:1', port: '0' },
    });
    expect(dashboardCommand(['audit', '--port=9', 'dashboard', 'x.ndjson'])).toMatchObject({
      mode: 'audit',
      file: 'x.ndjson',
    });
  });

  it('leaves every other command to the rest of the CLI', () => {
    expect(dashboardCommand(['rounds', 'list', 'dashboard'])).toBeUndefined();
    expect(dashboardCommand(['audit', 'verify', 'dashboard'])).toBeUndefined();
    expect(dashboardCommand(['--coordinator', 'dashboard', 'federations', 'list'])).toBeUndefined();
  });

  it('names what is wrong with a dashboard command line', () => {
    expect(() => dashboardCommand(['dashboard', '--bogus'])).toThrow(UsageError);
    expect(() => dashboardCommand(['audit', 'dashboard'])).toThrow(/needs one EXPORT file/);
    expect(() => dashboardCommand(['dashboard', 'extra'])).toThrow(/takes no arguments/);
  });
});
