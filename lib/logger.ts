import pino, { type Logger } from 'pino';
import { config } from './config';

/** The one logger. JSON lines to stdout; child loggers carry the component name. */
export const logger: Logger = pino({
  level: config().logLevel,
  base: { service: 'cadenza' },
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: {
    paths: ['*.password', '*.secretKey', '*.authorization', 'req.headers.authorization'],
    remove: true,
  },
});

export function childLogger(component: string): Logger {
  return logger.child({ component });
}
