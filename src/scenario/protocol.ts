import { InputError } from '../errors.js'
import type { Protocol } from './types.js'

/** The reference protocol of the embedded chain (contracts/ReferenceVault.sol), as data. */
export const referenceProtocol: Protocol = {
  vault: 'vault',
  entry: 'cycle()',
  sharePrice: 'sharePrice() returns (uint256)',
  riskMode: 'riskMode() returns (uint8)',
  bountyCap: 'bountyCap() returns (uint256)',
  bountyEvent: 'BountyPaid(address indexed keeper, uint256 amount, uint256 cap)',
  lender: { address: 'lender', token: 'asset' },
  state: [
    'totalAssets() returns (uint256)',
    'totalSupply() returns (uint256)',
    'riskMode() returns (uint8)',
    'tradeId() returns (uint256)',
    'tradeCollateral() returns (uint256)',
    'alpShares() returns (uint256)',
  ],
  signals: ['RiskModeChanged(uint8 from, uint8 to, string why)', 'UnwindDeferred(string reason)'],
}

export function resolveProtocol(protocol: Protocol | 'reference', embedded: boolean, file: string): Protocol {
  if (protocol !== 'reference') return protocol
  if (!embedded)
    throw new InputError(`${file}: \`protocol: reference\` only fits the embedded chain.`, {
      context: { File: file, Field: 'protocol' },
      hint: 'On --fork-url, describe your vault in a `protocol:` block (vault, entry, sharePrice, …) and name its contracts under `contracts:`.',
    })
  return referenceProtocol
}

/** `sharePrice() returns (uint256)` → `sharePrice()`; views without `returns` read one uint256. */
export function withReturns(signature: string): string {
  return signature.includes(' returns ') ? signature : `${signature} returns (uint256)`
}
