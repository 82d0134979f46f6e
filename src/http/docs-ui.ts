/**
 * How `/docs` (the Swagger UI) looks: Spillway's name and logo instead of Fastify's. The logo is
 * an inline SVG served by the process itself (no CDN, works offline): a spillway — water falling
 * over a weir into the basin below.
 */
import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui'

const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40">
<rect x="2" y="6" width="6" height="28" rx="1" fill="#1f3b57"/>
<path d="M8 10h10c6 0 8 4 9 10s3 12 9 12h2v2H8z" fill="#3a9ad9"/>
<path d="M8 14h9c4 0 5 3 6 8s3 10 8 10" fill="none" stroke="#bfe3fa" stroke-width="1.5"/>
<text x="46" y="27" font-family="Helvetica, Arial, sans-serif" font-size="20" font-weight="700" fill="#ffffff">Spillway</text>
</svg>`

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
<rect x="2" y="4" width="5" height="24" rx="1" fill="#1f3b57"/>
<path d="M7 8h8c5 0 6 3 7 8s3 10 7 10h1v2H7z" fill="#3a9ad9"/>
</svg>`

export const SPILLWAY_LOGO = Buffer.from(LOGO_SVG)

/** The options of @fastify/swagger-ui beside `routePrefix`. */
export const docsUiOptions: Omit<FastifySwaggerUiOptions, 'routePrefix'> = {
  logo: { type: 'image/svg+xml', content: SPILLWAY_LOGO, href: '/docs', target: '_self' },
  theme: {
    title: 'Spillway API',
    favicon: [
      {
        filename: 'favicon.svg',
        rel: 'icon',
        sizes: 'any',
        type: 'image/svg+xml',
        content: Buffer.from(ICON_SVG),
      },
    ],
  },
}
