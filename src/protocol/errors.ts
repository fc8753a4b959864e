/** The one error a cancelled request ends with, in every process (`signal.aborted` checks throw it). */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}
