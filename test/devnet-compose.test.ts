import * as fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

/**
 * devnet/docker-compose.yml cannot run here (no Docker engine); it is validated as a file: the
 * topology matches the embedded devnet, every validator drives its own Reth over the
 * JWT-authenticated Engine API, and every config it names exists and is consistent.
 */
type Service = { image?: string; command?: string[]; depends_on?: string[]; volumes?: string[] }
const compose = parse(fs.readFileSync('devnet/docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, Service> }
const services = compose.services
const validators = [0, 1, 2, 3]

describe('devnet/docker-compose.yml', () => {
  it('has four Reth execution nodes with the Engine API behind a JWT secret', () => {
    for (const i of validators) {
      const reth = services[`reth-${i}`]
      expect(reth?.image).toMatch(/reth/)
      expect(reth?.command).toContain('--authrpc.jwtsecret=/devnet/jwt.hex')
      expect(reth?.command).toContain('--authrpc.port=8551')
      expect(reth?.volumes?.some((v) => v.endsWith(':/data'))).toBe(true)
    }
  })

  it('has four consensus nodes, each depending on its own Reth and reading its own config', () => {
    for (const i of validators) {
      const node = services[`validator-${i}`]
      expect(node?.depends_on).toEqual([`reth-${i}`])
      const configPath = node?.command?.at(-1) as string
      expect(configPath).toBe(`/devnet/compose/validator-${i}.json`)
      const config = JSON.parse(fs.readFileSync(configPath.replace('/devnet/', 'devnet/'), 'utf8'))
      expect(config.id).toBe(i)
      expect(config.execution).toMatchObject({ kind: 'reth', engineUrl: `http://reth-${i}:8551`, jwtSecretFile: '/devnet/jwt.hex' })
      expect(config.peers.map((p: { id: number }) => p.id).sort()).toEqual(validators.filter((j) => j !== i))
      for (const p of config.peers) expect(p.address).toBe(`validator-${p.id}:26656`)
    }
  })

  it('the validator keys it names are the test-only devnet keys, one per validator', () => {
    const keys = JSON.parse(fs.readFileSync('devnet/keys.json', 'utf8'))
    expect(keys._comment).toMatch(/TEST-ONLY/)
    expect(keys.validators.map((v: { id: number }) => v.id)).toEqual(validators)
  })

  it('a broken topology is caught (the checks can fail)', () => {
    const broken = structuredClone(services)
    ;(broken['validator-2'] as Service).depends_on = ['reth-3']
    expect(validators.every((i) => JSON.stringify(broken[`validator-${i}`]?.depends_on) === JSON.stringify([`reth-${i}`]))).toBe(false)
  })
})
