// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IV2PairCumulative {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    function price0CumulativeLast() external view returns (uint256);
}

/// @notice Fixed-window TWAP of a V2Pair's price0 (token0 in token1, 1e18 fixed point).
contract TwapOracle {
    IV2PairCumulative public immutable pair;
    uint256 public immutable period;

    // The last observation and the average computed from it.
    uint256 public price0CumulativeLast;
    uint32 public blockTimestampLast;
    uint256 public price0Average;

    event Updated(uint256 price0Average, uint256 elapsed);

    constructor(address pair_, uint256 period_) {
        require(period_ > 0, "TwapOracle: zero period");
        pair = IV2PairCumulative(pair_);
        period = period_;
        (uint112 r0, uint112 r1, ) = pair.getReserves();
        require(r0 != 0 && r1 != 0, "TwapOracle: no reserves");
        (price0CumulativeLast, blockTimestampLast) = currentCumulative();
        // Until a full period has passed, spot at deployment is the best estimate there is.
        price0Average = (uint256(r1) * 1e18) / r0;
    }

    /// @notice The pair's cumulative price as if it had been updated this block (V2 oracle library).
    function currentCumulative() public view returns (uint256 cumulative, uint32 timestamp) {
        timestamp = uint32(block.timestamp);
        cumulative = pair.price0CumulativeLast();
        (uint112 r0, uint112 r1, uint32 last) = pair.getReserves();
        unchecked {
            // Reserves unchanged since `last`: add the accumulation the pair has not written yet.
            if (last != timestamp && r0 != 0) cumulative += ((uint256(r1) * 1e18) / r0) * (timestamp - last);
        }
    }

    /// @notice Recomputes the average once per period; a no-op otherwise, so keepers can always call it.
    function update() external {
        (uint256 cumulative, uint32 timestamp) = currentCumulative();
        uint32 elapsed;
        unchecked {
            elapsed = timestamp - blockTimestampLast; // wraps like the pair's clock
        }
        if (elapsed < period) return;
        unchecked {
            price0Average = (cumulative - price0CumulativeLast) / elapsed;
        }
        price0CumulativeLast = cumulative;
        blockTimestampLast = timestamp;
        emit Updated(price0Average, elapsed);
    }

    function consult() external view returns (uint256) {
        return price0Average;
    }
}
