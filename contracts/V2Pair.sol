// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20Balance {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @notice A Uniswap-V2-style constant-product pair: balances are the source of truth,
/// reserves are a cached copy updated by mint/swap/sync, and price accumulators feed TWAPs.
contract V2Pair {
    address public immutable token0;
    address public immutable token1;

    // Packed in one slot exactly like V2, so fork tooling can read or poke them together.
    uint112 private _reserve0;
    uint112 private _reserve1;
    uint32 private _blockTimestampLast;

    // 1e18 fixed point: price0 = reserve1 * 1e18 / reserve0, summed per second.
    uint256 public price0CumulativeLast;
    uint256 public price1CumulativeLast;

    // LP shares are only tracked, not transferable: the pair is a price source, not a product.
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    uint256 private unlocked = 1;

    event Mint(address indexed sender, uint256 amount0, uint256 amount1, uint256 liquidity);
    event Swap(
        address indexed sender,
        uint256 amount0In,
        uint256 amount1In,
        uint256 amount0Out,
        uint256 amount1Out,
        address indexed to
    );
    event Sync(uint112 reserve0, uint112 reserve1);

    modifier lock() {
        require(unlocked == 1, "V2Pair: locked");
        unlocked = 0;
        _;
        unlocked = 1;
    }

    constructor(address token0_, address token1_) {
        require(token0_ != token1_ && token0_ != address(0) && token1_ != address(0), "V2Pair: bad tokens");
        token0 = token0_;
        token1 = token1_;
    }

    function getReserves() public view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast) {
        return (_reserve0, _reserve1, _blockTimestampLast);
    }

    /// @notice V2's getAmountOut with the 0.3% fee taken from the input.
    function getAmountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) public pure returns (uint256) {
        require(amountIn > 0 && reserveIn > 0 && reserveOut > 0, "V2Pair: bad amounts");
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }

    /// @notice Mints LP for whatever was transferred in since the last update.
    function mint(address to) external lock returns (uint256 liquidity) {
        (uint112 r0, uint112 r1, ) = getReserves();
        uint256 balance0 = IERC20Balance(token0).balanceOf(address(this));
        uint256 balance1 = IERC20Balance(token1).balanceOf(address(this));
        uint256 amount0 = balance0 - r0;
        uint256 amount1 = balance1 - r1;
        if (totalSupply == 0) {
            liquidity = _sqrt(amount0 * amount1);
        } else {
            liquidity = _min((amount0 * totalSupply) / r0, (amount1 * totalSupply) / r1);
        }
        require(liquidity > 0, "V2Pair: no liquidity minted");
        totalSupply += liquidity;
        balanceOf[to] += liquidity;
        _update(balance0, balance1, r0, r1);
        emit Mint(msg.sender, amount0, amount1, liquidity);
    }

    /// @notice Optimistic swap: pay out first, then require the fee-adjusted K on balances.
    function swap(uint256 amount0Out, uint256 amount1Out, address to) external lock {
        require(amount0Out > 0 || amount1Out > 0, "V2Pair: no output");
        (uint112 r0, uint112 r1, ) = getReserves();
        require(amount0Out < r0 && amount1Out < r1, "V2Pair: insufficient liquidity");
        require(to != token0 && to != token1, "V2Pair: bad to");
        if (amount0Out > 0) _safeTransfer(token0, to, amount0Out);
        if (amount1Out > 0) _safeTransfer(token1, to, amount1Out);
        uint256 balance0 = IERC20Balance(token0).balanceOf(address(this));
        uint256 balance1 = IERC20Balance(token1).balanceOf(address(this));
        uint256 amount0In = balance0 > r0 - amount0Out ? balance0 - (r0 - amount0Out) : 0;
        uint256 amount1In = balance1 > r1 - amount1Out ? balance1 - (r1 - amount1Out) : 0;
        require(amount0In > 0 || amount1In > 0, "V2Pair: no input");
        // 0.3% of each input stays in the pool: (b0*1000 - in0*3) * (b1*1000 - in1*3) >= r0*r1*1e6.
        uint256 adjusted0 = balance0 * 1000 - amount0In * 3;
        uint256 adjusted1 = balance1 * 1000 - amount1In * 3;
        require(adjusted0 * adjusted1 >= uint256(r0) * r1 * 1e6, "V2Pair: K");
        _update(balance0, balance1, r0, r1);
        emit Swap(msg.sender, amount0In, amount1In, amount0Out, amount1Out, to);
    }

    /// @notice Sends balances above the reserves to `to`.
    function skim(address to) external lock {
        _safeTransfer(token0, to, IERC20Balance(token0).balanceOf(address(this)) - _reserve0);
        _safeTransfer(token1, to, IERC20Balance(token1).balanceOf(address(this)) - _reserve1);
    }

    /// @notice Forces the reserves to match the balances (e.g. after a donation).
    function sync() external lock {
        _update(
            IERC20Balance(token0).balanceOf(address(this)),
            IERC20Balance(token1).balanceOf(address(this)),
            _reserve0,
            _reserve1
        );
    }

    /// @dev Accumulates the price that held since the last update, then stores the new reserves.
    function _update(uint256 balance0, uint256 balance1, uint112 r0, uint112 r1) private {
        require(balance0 <= type(uint112).max && balance1 <= type(uint112).max, "V2Pair: overflow");
        uint32 now32 = uint32(block.timestamp);
        unchecked {
            // Wrapping is intended, as in V2: readers only use differences.
            uint32 elapsed = now32 - _blockTimestampLast;
            if (elapsed > 0 && r0 != 0 && r1 != 0) {
                price0CumulativeLast += ((uint256(r1) * 1e18) / r0) * elapsed;
                price1CumulativeLast += ((uint256(r0) * 1e18) / r1) * elapsed;
            }
        }
        _reserve0 = uint112(balance0);
        _reserve1 = uint112(balance1);
        _blockTimestampLast = now32;
        emit Sync(_reserve0, _reserve1);
    }

    function _safeTransfer(address token, address to, uint256 amount) private {
        require(IERC20Balance(token).transfer(to, amount), "V2Pair: transfer failed");
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }

    /// @dev Babylonian square root, as in V2's Math library.
    function _sqrt(uint256 y) private pure returns (uint256 z) {
        if (y > 3) {
            z = y;
            uint256 x = y / 2 + 1;
            while (x < z) {
                z = x;
                x = (y / x + x) / 2;
            }
        } else if (y != 0) {
            z = 1;
        }
    }
}
