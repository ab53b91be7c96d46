import { run } from '../context';
import type { ServiceDef } from './types';

/** A tool, not a process: installed for transcoding and loudness analysis in track ingestion. */
export const ffmpeg: ServiceDef = {
  name: 'ffmpeg',
  apt: ['ffmpeg'],
  ports: () => [],
  async ready() {
    await run('ffmpeg', 'ffmpeg', ['-hide_banner', '-version']);
  },
};
