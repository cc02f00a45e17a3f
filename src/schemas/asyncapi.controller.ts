import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { stringify } from 'yaml';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { buildAsyncApi } from './asyncapi.js';
import { SchemaRegistry } from './schema-registry.js';

/** `GET /v1/asyncapi.json` and `.yaml`: the AsyncAPI 3.0 document of this gateway, no credentials needed. */
@Controller('v1')
export class AsyncApiController {
  constructor(
    private readonly registry: SchemaRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('asyncapi.json')
  async json(@Res() res: Response): Promise<void> {
    res
      .status(200)
      .type('application/json')
      .send(JSON.stringify(await this.document(), null, 2));
  }

  @Get('asyncapi.yaml')
  async yaml(@Res() res: Response): Promise<void> {
    res
      .status(200)
      .type('application/yaml')
      .send(stringify(await this.document()));
  }

  private async document(): Promise<Record<string, unknown>> {
    const subjects = [];
    for (const s of await this.registry.list()) {
      const latest = this.registry.lookup(s.subject)?.versions[s.latestVersion - 1];
      if (latest) {
        subjects.push({
          subject: s.subject,
          version: latest.version,
          schema: latest.schema,
          dataschema: latest.dataschema,
        });
      }
    }
    return buildAsyncApi({
      title: 'Hookstream',
      version: '1.0.0',
      publicUrl: this.config.publicUrl,
      subjectPrefix: this.config.stream.subjectPrefix,
      sources: [...this.config.sources.values()].map((s) => ({ name: s.name, verifier: s.verifier })),
      subjects,
    });
  }
}
