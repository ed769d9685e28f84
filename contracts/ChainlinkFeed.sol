// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A Chainlink-style aggregator with an owner-set answer, so tests can move or stale it.
contract ChainlinkFeed {
    uint8 public constant decimals = 8;
    string public description;
    address public owner;

    // Plain storage so fork tooling can overwrite the answer or its age directly. The getters
    // double as Chainlink's legacy latestAnswer() / latestTimestamp() / latestRound().
    int256 public latestAnswer;
    uint256 public latestTimestamp;
    uint80 public latestRound;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(string memory description_, int256 initialAnswer) {
        owner = msg.sender;
        description = description_;
        _set(initialAnswer);
    }

    function setAnswer(int256 newAnswer) external {
        require(msg.sender == owner, "ChainlinkFeed: not owner");
        _set(newAnswer);
    }

    /// @notice Same shape as AggregatorV3Interface; startedAt equals updatedAt (one-shot rounds).
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return (latestRound, latestAnswer, latestTimestamp, latestTimestamp, latestRound);
    }

    function _set(int256 newAnswer) private {
        latestRound += 1;
        latestAnswer = newAnswer;
        latestTimestamp = block.timestamp;
        emit AnswerUpdated(newAnswer, latestRound, block.timestamp);
    }
}
