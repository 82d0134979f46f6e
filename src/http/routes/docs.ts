/** The served contract: `GET /openapi.json` (openapi.ts) and the Swagger UI at `/docs`. */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { docsUiOptions } from '../docs-ui.ts'
import { openapiDocument } from '../openapi.ts'

export async function registerDocsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { document: openapiDocument as never } })
  await app.register(swaggerUi, { routePrefix: '/docs', ...docsUiOptions })
  app.get('/openapi.json', { schema: { hide: true } }, async () => openapiDocument)
}
