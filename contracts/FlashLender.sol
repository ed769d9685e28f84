// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20Lendable {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IFlashBorrower {
    function onFlashLoan(address initiator, address token, uint256 amount, uint256 fee, bytes calldata data)
        external
        returns (bytes32);
}

/// @notice ERC-3156-style lender of whatever tokens it holds, for a 5 bps fee.
contract FlashLender {
    bytes32 public constant CALLBACK_SUCCESS = keccak256("ERC3156FlashBorrower.onFlashLoan");
    uint256 public constant FEE_BPS = 5;

    event FlashLoan(address indexed receiver, address indexed token, uint256 amount, uint256 fee);

    function maxFlashLoan(address token) public view returns (uint256) {
        return IERC20Lendable(token).balanceOf(address(this));
    }

    function flashFee(address, uint256 amount) public pure returns (uint256) {
        return (amount * FEE_BPS) / 10_000;
    }

    function flashLoan(address receiver, address token, uint256 amount, bytes calldata data) external returns (bool) {
        require(amount <= maxFlashLoan(token), "FlashLender: insufficient liquidity");
        uint256 fee = flashFee(token, amount);
        require(IERC20Lendable(token).transfer(receiver, amount), "FlashLender: transfer failed");
        require(
            IFlashBorrower(receiver).onFlashLoan(msg.sender, token, amount, fee, data) == CALLBACK_SUCCESS,
            "FlashLender: callback failed"
        );
        // Pull rather than trust a push: the receiver approved amount + fee in its callback.
        require(IERC20Lendable(token).transferFrom(receiver, address(this), amount + fee), "FlashLender: repay failed");
        emit FlashLoan(receiver, token, amount, fee);
        return true;
    }
}
